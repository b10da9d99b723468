import LuaPipe
import LuaPipeCore

/// The built-in `http` plugin: calls a service per record and puts the JSON answer in a field.
///
/// Config: `url` (with `{field}` placeholders, filled URL-encoded from the record; a missing
/// field fails the record), `method` (GET), `body` (`record`, or a field name: sent as JSON),
/// `headers`, `into` (the field that gets the answer), `retries` (2: on a 5xx answer or a
/// connection error, with exponential backoff from 50 ms, all within the entry's
/// `timeout_ms`). A non-2xx answer after the retries, or a 2xx body that is not JSON, fails
/// the record under the entry's `on_error`. Many records wait at once (`concurrency`).
final class HTTPPlugin: ConcurrentPlugin {
    enum Part: Sendable { case text(String), field(String) }
    enum Body: Sendable { case none, record, field(String) }

    let url: [Part]
    let method: String
    let body: Body
    let headers: [(String, String)]
    let into: String
    let retries: Int
    let hosts: Set<String>?
    let service: (any HTTPService)?

    init(_ config: Record, _ env: PluginRegistry.Environment) throws {
        guard let template = config["url"]?.stringValue else { throw configError("http", "url", "a URL such as \"http://svc/geo/{ip}\" expected") }
        url = try Self.parse(template)
        method = (config["method"]?.stringValue ?? "GET").uppercased()
        guard ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"].contains(method) else {
            throw configError("http", "method", "GET, POST, PUT, PATCH, DELETE or HEAD expected")
        }
        switch config["body"] {
        case nil, .null?: body = .none
        case .string("record")?: body = .record
        case .string(let f)?: body = .field(f)
        default: throw configError("http", "body", "`record` or a field name expected")
        }
        var h: [(String, String)] = []
        if case .object(let o)? = config["headers"] {
            for (k, v) in o.fields {
                guard let s = v.stringValue else { throw configError("http", "headers.\(k)", "a string expected") }
                h.append((k, s))
            }
        } else if config["headers"] != nil {
            throw configError("http", "headers", "a map of name: value expected")
        }
        if case .none = body {} else if !h.contains(where: { $0.0.lowercased() == "content-type" }) {
            h.append(("content-type", "application/json"))
        }
        headers = h
        guard let into = config["into"]?.stringValue, !into.isEmpty else { throw configError("http", "into", "a field name expected") }
        self.into = into
        let r = config["retries"].map { $0.intValue ?? -1 } ?? 2  // a float or a string is no count
        guard (0...10).contains(r) else { throw configError("http", "retries", "a whole number from 0 to 10 expected") }
        retries = Int(r)
        hosts = env.httpHosts
        service = env.http
        if let first = url.first, case .text(let t) = first, let why = HTTPRequest(url: t + "x", hosts: hosts).refusal(t + "x") {
            throw configError("http", "url", why)
        }
    }

    func setup(_ context: PluginContext) async throws {
        if service == nil { throw PipelineError(.setup, "http: no HTTP client in this program (set PluginRegistry.http)") }
    }

    /// "http://svc/geo/{ip}" -> [.text("http://svc/geo/"), .field("ip")]
    static func parse(_ template: String) throws -> [Part] {
        var parts: [Part] = []
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            if open > rest.startIndex { parts.append(.text(String(rest[..<open]))) }
            guard let close = rest[open...].firstIndex(of: "}") else { throw configError("http", "url", "a `{` without its `}`") }
            let name = String(rest[rest.index(after: open)..<close])
            guard !name.isEmpty else { throw configError("http", "url", "an empty `{}` placeholder") }
            parts.append(.field(name))
            rest = rest[rest.index(after: close)...]
        }
        if !rest.isEmpty { parts.append(.text(String(rest))) }
        return parts
    }

    func process(_ record: Record, _ context: PluginContext) async throws -> Disposition {
        var target = ""
        for part in url {
            switch part {
            case .text(let t): target += t
            case .field(let f):
                guard let v = record[f], !v.isNull else { throw PipelineError(.plugin, "http: the record has no field '\(f)' for the URL") }
                target += Self.encode(v.stringValue ?? JSONWriter.encode(v))
            }
        }
        let payload: [UInt8]? = switch body {
        case .none: nil
        case .record: Array(JSONWriter.encode(.object(record)).utf8)
        case .field(let f): Array(JSONWriter.encode(record[f] ?? .null).utf8)
        }
        let request = HTTPRequest(method: method, url: target, headers: headers, body: payload,
                                  timeout: .seconds(3600), hosts: hosts)  // the entry's timeout_ms cancels it
        var backoff = Duration.milliseconds(50)
        var attempt = 0
        while true {
            let outcome: Result<HTTPResponse, PipelineError>
            do { outcome = .success(try await service!.send(request)) } catch let e as PipelineError {
                if e.code == .cancelled || Task.isCancelled { throw e }
                outcome = .failure(e)
            }
            switch outcome {
            case .success(let response) where (200...299).contains(response.status):
                defer { service!.release(response) }  // the answer is in the record now
                guard let json = response.json ?? (response.body.withUnsafeBufferPointer { try? JSONReader.parseValue($0).value() }) else {
                    throw PipelineError(.plugin, "http: \(method) \(target) answered \(response.status) with a body that is not JSON")
                }
                var r = record
                r[into] = json
                return .replace(r)
            case .success(let response) where response.status >= 500 && attempt < retries:
                service!.release(response)
            case .success(let response):
                service!.release(response)
                throw PipelineError(.plugin, "http: \(method) \(target) answered \(response.status)"
                                    + (attempt > 0 ? " after \(attempt) retries" : ""))
            case .failure(let e) where attempt < retries && e.code != .timeout:
                _ = e
            case .failure(let e):
                throw e
            }
            attempt += 1
            try await Task.sleep(for: backoff)
            backoff *= 2
        }
    }

    /// Percent-encodes everything but RFC 3986's unreserved characters.
    static func encode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(Character(Unicode.Scalar(b)))
            default:
                let hex = Array("0123456789ABCDEF")
                out += "%\(hex[Int(b >> 4)])\(hex[Int(b & 15)])"
            }
        }
        return out
    }
}

/// Registers what this module adds: the built-in `http` plugin.
public enum HTTPPlugins {
    public static func register(in registry: PluginRegistry) {
        registry.add(.init(name: "http", version: "1.0.0", description: "calls an HTTP service per record; puts its JSON answer in a field",
                           kind: "swift", parallel: false, builtin: true,
                           make: { ctx, env in .async(try HTTPPlugin(ctx.configRecord, env)) }))
    }
}
