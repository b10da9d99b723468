#if canImport(Glibc)
import Glibc
#endif
import LuaPipeCore
import LuaPipeMetrics
import Testing

@Suite("The /metrics server")
struct MetricsServerTests {
    @Test("GET /metrics answers 200 in the text format, other paths 404, other methods 405; after stop nothing listens")
    func serves() async throws {
        let server = try await MetricsServer.start(ListenAddress(host: "127.0.0.1", port: 0),
                                                   metrics: RunMetrics(monitor: RunMonitor(), entries: ["e"]))
        let port = server.address.port
        #expect(port > 0 && server.url == "http://127.0.0.1:\(port)/metrics")
        let ok = try #require(await get(port, "GET /metrics"))
        #expect(ok.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(ok)")
        #expect(ok.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"))
        #expect(ok.contains("\r\n\r\n") && ok.contains("luapipe_plugin_calls_total{entry=\"e\"} 0\n"))
        #expect(try #require(await get(port, "GET /other")).hasPrefix("HTTP/1.1 404 "))
        #expect(try #require(await get(port, "POST /metrics")).hasPrefix("HTTP/1.1 405 "))
        await server.stop()
        // (Another test's process may have been given the freed port since: not our server.)
        let late = await get(port, "GET /metrics")
        #expect(!(late ?? "").contains("luapipe_"), "still serving after stop: \(late ?? "")")
    }

    @Test("a port in use is a listen error that names the address")
    func inUse() async throws {
        let figures = RunMetrics(monitor: RunMonitor(), entries: [])
        let first = try await MetricsServer.start(ListenAddress(host: "127.0.0.1", port: 0), metrics: figures)
        let address = ListenAddress(host: "127.0.0.1", port: first.address.port)
        await #expect {
            try await MetricsServer.start(address, metrics: figures)
        } throws: { error in
            guard let e = error as? MetricsError else { return false }
            return e.code == .listen && e.message.contains("--metrics \(address): cannot listen there: Address already in use")
        }
        await first.stop()
    }

    /// One request with `Connection: close`; the whole answer, or nil when nothing listens.
    /// On a thread of its own: the socket calls block.
    func get(_ port: Int, _ requestLine: String) async -> String? {
        let worker = WorkerThread(name: "test-http")
        defer { worker.shutdown() }
        return await worker.run { Self.request(port, requestLine) }
    }

    static func request(_ port: Int, _ requestLine: String) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { return nil }
        let request = Array("\(requestLine) HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == request.count else { return nil }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            answer += buffer[..<n]
        }
        return String(decoding: answer, as: UTF8.self)
    }
}
