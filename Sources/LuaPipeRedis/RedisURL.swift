/// Where a Redis server listens.
public struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var description: String { "\(host):\(port)" }
}

/// A `redis://` URL of `--input`, `--output` or `--dead-letter` (docs/reference.md, "Redis
/// streams"): `redis://HOST[:PORT]/STREAM[?key=value&...]`.
public struct RedisStreamURL: Sendable, Equatable {
    public var endpoint: RedisEndpoint
    public var stream: String
    /// Input only: the consumer group and this process's name in it.
    public var group: String?
    public var consumer: String?
    /// Input only: where a group created by this run starts: "0" (the whole stream) or "$".
    public var start: String = "0"
    /// Input only: entries other consumers left pending this long are claimed.
    public var claimIdleMs: Int = 30_000
    /// Output only: trim the stream to about this many entries (MAXLEN ~).
    public var maxLen: Int?

    public static func isRedis(_ s: String) -> Bool { s.hasPrefix("redis://") }

    public static let inputForm = "redis://HOST:PORT/STREAM?group=G&consumer=C[&start=0|$][&claim_idle_ms=N]"
    public static let outputForm = "redis://HOST:PORT/STREAM[?maxlen=N]"

    /// Parses an input URL (`flag` names the option in errors).
    public static func input(_ s: String, flag: String = "--input") throws(RedisError) -> RedisStreamURL {
        var u = try parse(s, flag: flag, form: inputForm, keys: ["group", "consumer", "start", "claim_idle_ms"])
        let q = u.query
        guard let g = q["group"], !g.isEmpty else {
            throw RedisError(url: flag, s, "it names no consumer group (group=G); a stream is read through one: \(inputForm)")
        }
        guard let c = q["consumer"], !c.isEmpty else {
            throw RedisError(url: flag, s, "it names no consumer (consumer=C), which must stay the same across restarts of this worker: \(inputForm)")
        }
        u.url.group = g
        u.url.consumer = c
        if let st = q["start"] {
            guard st == "0" || st == "$" else { throw RedisError(url: flag, s, "start must be 0 (the whole stream) or $ (new entries only), got '\(st)'") }
            u.url.start = st
        }
        if let v = q["claim_idle_ms"] {
            u.url.claimIdleMs = try number(v, "claim_idle_ms", 1...86_400_000, flag, s)
        }
        return u.url
    }

    /// Parses an output or dead-letter URL.
    public static func output(_ s: String, flag: String = "--output") throws(RedisError) -> RedisStreamURL {
        var u = try parse(s, flag: flag, form: outputForm, keys: ["maxlen"])
        if let v = u.query["maxlen"] { u.url.maxLen = try number(v, "maxlen", 1...Int(Int32.max), flag, s) }
        return u.url
    }

    private static func number(_ v: String, _ key: String, _ range: ClosedRange<Int>, _ flag: String, _ s: String) throws(RedisError) -> Int {
        guard let n = Int(v), range.contains(n) else {
            throw RedisError(url: flag, s, "\(key) must be a whole number from \(range.lowerBound) to \(range.upperBound), got '\(v)'")
        }
        return n
    }

    static func parse(_ s: String, flag: String, form: String, keys: [String], path: String = "stream") throws(RedisError)
        -> (url: RedisStreamURL, query: [String: String]) {
        guard s.hasPrefix("redis://") else { throw RedisError(url: flag, s, "expected \(form)") }
        var rest = Substring(s.dropFirst("redis://".count))
        var queryText: Substring = ""
        if let q = rest.firstIndex(of: "?") {
            queryText = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        guard let slash = rest.firstIndex(of: "/") else {
            throw RedisError(url: flag, s, "it names no \(path) (the path after HOST:PORT): \(form)")
        }
        let authority = rest[..<slash]
        guard let stream = decode(rest[rest.index(after: slash)...]), !stream.isEmpty else {
            throw RedisError(url: flag, s, "it names no \(path) (the path after HOST:PORT): \(form)")
        }
        if authority.contains("@") {
            throw RedisError(url: flag, s, "user names and passwords are not supported yet")
        }
        var host = String(authority), port = 6379
        if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            let p = authority[authority.index(after: colon)...]
            guard let n = Int(p), (1...65535).contains(n) else {
                throw RedisError(url: flag, s, "the port must be a number from 1 to 65535, got '\(p)'")
            }
            port = n
        }
        guard !host.isEmpty else { throw RedisError(url: flag, s, "it names no host: \(form)") }
        var query: [String: String] = [:]
        for pair in queryText.split(separator: "&", omittingEmptySubsequences: true) {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(kv[0])
            guard keys.contains(key) else {
                throw RedisError(url: flag, s, "unknown parameter '\(key)' "
                                 + (keys.isEmpty ? "(it takes none)" : "(known here: \(keys.joined(separator: ", ")))"))
            }
            guard kv.count == 2, let value = decode(kv[1]) else {
                throw RedisError(url: flag, s, "parameter '\(key)' has no value (\(key)=...)")
            }
            guard query[key] == nil else { throw RedisError(url: flag, s, "parameter '\(key)' is given twice") }
            query[key] = value
        }
        return (RedisStreamURL(endpoint: RedisEndpoint(host: host, port: port), stream: stream), query)
    }

    /// Percent-decoding; nil when an escape is malformed.
    private static func decode(_ s: Substring) -> String? {
        var out: [UInt8] = []
        var bytes = Array(s.utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "%") {
                guard bytes.count >= 2, let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16) else { return nil }
                out.append(v)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(b)
            }
        }
        return String(validating: out, as: UTF8.self)
    }
}

/// `shared: redis://HOST[:PORT]/PREFIX` of a manifest: ctx.shared in Redis, each key stored
/// as `PREFIX:key` (docs/reference.md, "Shared state in Redis").
public struct RedisSharedURL: Sendable, Equatable, CustomStringConvertible {
    public var endpoint: RedisEndpoint
    public var prefix: String
    public static let form = "redis://HOST:PORT/PREFIX"

    /// `what` names the setting in errors ("m.yaml:3: shared:").
    public static func parse(_ s: String, what: String = "shared:") throws(RedisError) -> RedisSharedURL {
        let u = try RedisStreamURL.parse(s, flag: what, form: form, keys: [], path: "key prefix")
        return RedisSharedURL(endpoint: u.url.endpoint, prefix: u.url.stream)
    }

    public var description: String { "redis://\(endpoint)/\(prefix)" }
}

/// What went wrong with Redis: the one error type of this module.
/// - `url`: a `redis://` URL that cannot be used (a usage error): which option, the URL, and
///   what is wrong.
/// - `connection`: Redis could not be reached, the connection broke, or Redis is not ready
///   (LOADING): worth retrying. An error reply is not one of these: it is an answer.
public struct RedisError: Error, CustomStringConvertible {
    public enum Code: Sendable { case url, connection }
    public var code: Code
    public var message: String

    init(url flag: String, _ url: String, _ problem: String) {
        code = .url
        message = "\(flag) \(url): \(problem)"
    }

    init(connection message: String) {
        code = .connection
        self.message = message
    }

    public var description: String { message }
}
