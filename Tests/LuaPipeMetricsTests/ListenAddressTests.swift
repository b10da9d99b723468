import LuaPipeMetrics
import Testing

@Suite("--metrics HOST:PORT")
struct ListenAddressTests {
    @Test("forms that parse", arguments: [
        ("127.0.0.1:9464", "127.0.0.1", 9464), ("localhost:0", "localhost", 0), ("0.0.0.0:65535", "0.0.0.0", 65535),
        ("[::1]:9464", "::1", 9464),
    ])
    func good(_ s: String, _ host: String, _ port: Int) throws {
        let a = try ListenAddress(parsing: s)
        #expect(a.host == host && a.port == port)
        #expect(a.description == s)
    }

    @Test("forms that do not, each with what is wrong", arguments: [
        ("127.0.0.1", "no port"), ("127.0.0.1:", "no port"), (":9464", "no host"), ("127.0.0.1:65536", "from 0 to 65,535"),
        ("127.0.0.1:-1", "from 0 to 65,535"), ("127.0.0.1:+80", "from 0 to 65,535"), ("127.0.0.1:http", "from 0 to 65,535"),
        ("::1:9464", "in brackets"), ("[::1]", "no port"), ("[::1:9464", "closing bracket"), ("", "no port"),
    ])
    func bad(_ s: String, _ problem: String) {
        #expect {
            _ = try ListenAddress(parsing: s)
        } throws: { error in
            guard let e = error as? MetricsError else { return false }
            return e.code == .address && e.message.hasPrefix("--metrics \(s): ") && e.message.contains(problem)
        }
    }
}
