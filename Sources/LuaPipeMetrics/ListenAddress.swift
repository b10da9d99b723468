/// Where `--metrics` listens: `HOST:PORT`, `[IPv6]:PORT`; port 0 asks for any free port.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public static let form = "HOST:PORT (e.g. 127.0.0.1:9464; port 0 for any free port)"

    /// Checks the form only; the host is resolved when the server starts.
    public init(parsing s: String, flag: String = "--metrics") throws(MetricsError) {
        func bad(_ problem: String) -> MetricsError { MetricsError(.address, "\(flag) \(s): \(problem)") }
        let hostPart: Substring, portPart: Substring
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { throw bad("an IPv6 address needs its closing bracket: [::1]:9464") }
            hostPart = s[s.index(after: s.startIndex)..<close]
            let rest = s[s.index(after: close)...]
            guard rest.hasPrefix(":") else { throw bad("no port: give \(Self.form)") }
            portPart = rest.dropFirst()
        } else {
            guard let colon = s.lastIndex(of: ":") else { throw bad("no port: give \(Self.form)") }
            hostPart = s[..<colon]
            portPart = s[s.index(after: colon)...]
            if hostPart.contains(":") { throw bad("an IPv6 address goes in brackets: [::1]:9464") }
        }
        guard !hostPart.isEmpty else { throw bad("no host: give \(Self.form); 0.0.0.0 listens on every interface") }
        guard !portPart.isEmpty else { throw bad("no port: give \(Self.form)") }
        guard portPart.allSatisfy({ $0.isASCII && $0.isNumber }), let port = Int(portPart), (0...65_535).contains(port) else {
            throw bad("the port must be a whole number from 0 to 65,535, got '\(portPart)'")
        }
        host = String(hostPart)
        self.port = port
    }

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `host:port`, with an IPv6 host in brackets.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
