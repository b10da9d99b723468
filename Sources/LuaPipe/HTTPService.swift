import LuaPipeCore

/// One HTTP request, as Lua's `luapipe.http.request` and the built-in `http` plugin make it.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    /// Names and values in order (a name may repeat).
    public var headers: [(String, String)]
    public var body: [UInt8]?
    public var timeout: Duration
    /// Hops to follow on a redirect (0: none); every hop is checked against `hosts`.
    public var redirects: Int
    /// "host:port" pairs the request may go to; nil: anywhere.
    public var hosts: Set<String>?

    public init(method: String = "GET", url: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
                timeout: Duration = .seconds(10), redirects: Int = 0, hosts: Set<String>? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.redirects = redirects
        self.hosts = hosts
    }

    /// The most a request or response body may hold.
    public static let maxBody = 16 << 20
}

public struct HTTPResponse: Sendable {
    public var status: Int
    /// Names lower-cased, in the order the server sent them.
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Bytes of the run's host budget the body holds until the caller releases them
    /// (`HTTPService.release`), once the answer is in a record or in a plugin's state.
    public var charged: Int

    public init(status: Int, headers: [(String, String)], body: [UInt8], charged: Int = 0) {
        self.status = status
        self.headers = headers
        self.body = body
        self.charged = charged
    }

    /// The body as a JSON value, when the content type says JSON and the body parses.
    public var json: Value? {
        guard let type = headers.first(where: { $0.0 == "content-type" })?.1.lowercased(),
              type.hasPrefix("application/json") || type.contains("+json") else { return nil }
        return body.withUnsafeBufferPointer { try? JSONReader.parseValue($0).value() }
    }
}

/// Sends HTTP requests for plugins (one client per run; `LuaPipeHTTP` provides it). It must
/// refuse a host outside `request.hosts` before connecting, refuse bodies past
/// `HTTPRequest.maxBody`, and stop at the request's timeout or when the calling task is
/// cancelled.
public protocol HTTPService: Sendable {
    func send(_ request: HTTPRequest) async throws -> HTTPResponse
    /// Gives back what a response's body held of the host budget.
    func release(_ response: HTTPResponse)
}

extension HTTPService {
    public func release(_ response: HTTPResponse) {}
}

extension HTTPRequest {
    /// "host:port" of a URL (port 80/443 by scheme when absent), lower-cased; nil when the URL
    /// is not http(s)://host[:port]/...
    public static func hostPort(_ url: String) -> String? {
        let lower = url.lowercased()
        let (rest, port): (Substring, Int)
        if lower.hasPrefix("http://") { (rest, port) = (lower.dropFirst(7), 80) }
        else if lower.hasPrefix("https://") { (rest, port) = (lower.dropFirst(8), 443) }
        else { return nil }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let hostPart = authority.split(separator: "@").last.map(String.init) ?? ""
        guard !hostPart.isEmpty else { return nil }
        if hostPart.hasPrefix("[") {  // [v6]:port
            guard let close = hostPart.firstIndex(of: "]") else { return nil }
            let host = hostPart[...close]
            let after = hostPart[hostPart.index(after: close)...]
            return after.hasPrefix(":") ? "\(host)\(after)" : "\(host):\(port)"
        }
        return hostPart.contains(":") ? hostPart : "\(hostPart):\(port)"
    }

    /// Nil when the URL may be requested; otherwise why not.
    public func refusal(_ url: String) -> String? {
        guard let hp = Self.hostPort(url) else { return "not an http:// or https:// URL: \(url)" }
        if let hosts, !hosts.contains(hp) {
            return "\(hp) is not among the hosts this plugin may reach (http_hosts: \(hosts.sorted().joined(separator: ", ")))"
        }
        return nil
    }
}
