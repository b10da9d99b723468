import Foundation
import Testing

/// A local HTTP service for the tests (Fixtures/http/server.py), on a free loopback port.
final class TestServer: @unchecked Sendable {
    // Safe because the fields are set once in init and only read after.
    let process = Process()
    let port: Int

    init() throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Binary.fixtures + "/http/server.py"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while !line.contains(10) {
            let d = out.fileHandleForReading.availableData
            if d.isEmpty { break }
            line.append(d)
        }
        guard let p = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw CocoaError(.fileReadUnknown)
        }
        port = p
    }

    /// SIGKILL: the test process blocks signals on its threads, and a child inherits that mask,
    /// so python would ignore SIGTERM.
    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// A free loopback port nobody listens on (bound, then closed).
    static func closedPort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

@Suite("The http built-in against a local service, end to end", .serialized)
struct HTTPTests {
    static func manifest(_ name: String, _ entry: String) throws -> String {
        let path = Binary.temp("http-\(name).yaml")
        try "api: 1\ndead_letter: \(Binary.temp("http-\(name)-dl.jsonl"))\nplugins:\n  - use: http\n\(entry)"
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("2xx JSON lands in `into`, in input order, with many requests in flight")
    func enrich() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let m = try Self.manifest("ok", "    config: { url: \"http://127.0.0.1:\(server.port)/geo/{ip}?ms={ms}\", into: geo }\n    concurrency: 32\n")
        // Random latencies: later records often finish first.
        let input = (1...300).map { "{\"id\":\($0),\"ip\":\"10.0.\($0 % 7).\($0)\",\"ms\":\(($0 * 37) % 20)}" }.joined(separator: "\n") + "\n"
        let stats = Binary.temp("http-ok.json")
        let r = try await Binary.runOffPool(["run", m, "--stats-json", stats], input: input)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.lines.count == 300)
        let expected = (1...300).map { i -> String in
            let ip = "10.0.\(i % 7).\(i)"
            return "{\"id\":\(i),\"ip\":\"\(ip)\",\"ms\":\((i * 37) % 20),\"geo\":{\"ip\":\"\(ip)\",\"country\":\"X\(ip.count)\"}}"
        }
        #expect(r.lines == expected)
        let p = (try Binary.stats(stats)["plugins"] as? [[String: Any]])?.first ?? [:]
        #expect((p["in_flight_max"] as? Int ?? 0) > 1, "\(p)")
    }

    @Test("what goes wrong fails the record under on_error, with a message that says what", arguments: [
        ("retry", "/flaky/{id}", "", true, ""),
        ("always500", "/fail", "", false, "answered 500 after 2 retries"),
        ("text", "/text", "", false, "a body that is not JSON"),
        ("slow", "/geo/{id}?ms=3000", "    timeout_ms: 300\n", false, "timeout"),
        ("big", "/big", "", true, ""),
        ("missing", "/geo/{nope}", "", false, "the record has no field 'nope'"),
    ])
    func failures(_ name: String, _ path: String, _ extra: String, _ ok: Bool, _ message: String) async throws {
        let server = try TestServer()
        defer { server.stop() }
        let m = try Self.manifest(name, "    config: { url: \"http://127.0.0.1:\(server.port)\(path)\", into: answer }\n    on_error: dead-letter\n\(extra)")
        let stats = Binary.temp("http-\(name).json")
        let r = try await Binary.runOffPool(["run", m, "--stats-json", stats], input: "{\"id\":\"a1\"}\n{\"id\":\"b2\"}\n")
        #expect(r.status == 0, "\(r.stderr)")
        let s = try Binary.stats(stats)
        #expect(Binary.balanced(s))
        if ok {
            #expect(s["records_out"] as? Int == 2, "\(s) \(r.stderr.suffix(500))")
            #expect(r.lines.allSatisfy { $0.contains("\"answer\":") })
        } else {
            #expect(s["dead_lettered"] as? Int == 2, "\(s)")
            let dl = try String(contentsOfFile: Binary.temp("http-\(name)-dl.jsonl"), encoding: .utf8)
            #expect(dl.contains(message), "\(dl.prefix(600))")
        }
    }

    @Test("answers in flight are charged to the host budget: past it a record fails as a memory error, none is lost")
    func bodiesCharged() async throws {
        let server = try TestServer()
        defer { server.stop() }
        // 16 answers of 10 MB, each half sent, then the rest 1 s later: at once they would
        // hold 80 MB and more; the budget is 32 MiB.
        let m = try Self.manifest("budget", "    config: { url: \"http://127.0.0.1:\(server.port)/big?pause=1000\", into: answer }\n"
                                  + "    concurrency: 16\n    on_error: dead-letter\n")
        let stats = Binary.temp("http-budget.json")
        let input = Binary.records(16)
        let r = try await Binary.runOffPool(["run", m, "--stats-json", stats, "--host-memory-mb", "32"], input: input)
        #expect(r.status == 0, "\(r.stderr)")
        let s = try Binary.stats(stats)
        #expect(Binary.balanced(s), "\(s)")
        #expect((s["dead_lettered"] as? Int ?? 0) >= 1, "\(s)")
        #expect((s["records_out"] as? Int ?? 0) + (s["dead_lettered"] as? Int ?? 0) == 16, "\(s)")
        let dl = try String(contentsOfFile: Binary.temp("http-budget-dl.jsonl"), encoding: .utf8)
        #expect(dl.contains("not enough host memory"), "\(dl.prefix(600))")
    }

    @Test("a refused connection fails the record; a host outside http_hosts is refused before connecting")
    func refused() async throws {
        let port = TestServer.closedPort()
        let m = try Self.manifest("refused", "    config: { url: \"http://127.0.0.1:\(port)/geo/{id}\", into: g, retries: 1 }\n    on_error: dead-letter\n")
        let r = try await Binary.runOffPool(["run", m], input: "{\"id\":\"x\"}\n")
        #expect(r.status == 0, "\(r.stderr)")
        let dl = try String(contentsOfFile: Binary.temp("http-refused-dl.jsonl"), encoding: .utf8)
        #expect(dl.contains("failed") && dl.contains("127.0.0.1:\(port)"), "\(dl)")

        let server = try TestServer()
        defer { server.stop() }
        let outside = try Self.manifest("outside", "    config: { url: \"http://127.0.0.1:\(server.port)/geo/{id}\", into: g }\n    http_hosts: [\"127.0.0.1:1\"]\n")
        let o = try await Binary.runOffPool(["run", outside], input: "{\"id\":\"x\"}\n")
        #expect(o.status == 2, "a URL outside http_hosts is a manifest error: \(o.stderr)")
        #expect(o.stderr.contains("not among the hosts this plugin may reach"), "\(o.stderr)")
    }

    /// luapipe.http.request from a Lua plugin: each record asks for one thing, 64 in flight.
    @Test("luapipe.http.request from Lua: answers, errors pcall can catch, and the record's deadline pcall cannot")
    func luaRequests() async throws {
        let server = try TestServer()
        defer { server.stop() }
        let refused = TestServer.closedPort()
        let path = Binary.temp("http-lua.yaml")
        let deadLetters = Binary.temp("http-lua-dl.jsonl")
        try? FileManager.default.removeItem(atPath: deadLetters)
        try """
            api: 1
            plugin_paths: [\(Binary.fixtures)/plugins]
            dead_letter: \(deadLetters)
            plugins:
              - use: fetcher
                config: { base: "http://127.0.0.1:\(server.port)" }
                allow: [http]
                http_hosts: ["127.0.0.1:\(server.port)", "127.0.0.1:\(refused)"]
                timeout_ms: 1500
                memory_mb: 128
                on_error: dead-letter

            """.write(toFile: path, atomically: true, encoding: .utf8)
        let input = [
            #"{"path":"/geo/1.2.3.4?ms=30"}"#,
            #"{"path":"/fail"}"#,
            #"{"path":"/text"}"#,
            #"{"path":"/geo/slow?ms=3000","timeout":0.2}"#,
            #"{"path":"/big"}"#,
            #"{"path":"/echo","method":"POST","send":{"a":[1,2],"b":"c"}}"#,
            #"{"url":"http://127.0.0.2:\#(server.port)/geo/1"}"#,
            #"{"url":"http://127.0.0.1:\#(refused)/geo/1"}"#,
            #"{"path":"/redirect/9.9.9.9","redirects":1}"#,
            #"{"path":"/geo/late?ms=5000"}"#,
            #"{"path":"/drip","timeout":0.3}"#,
        ].joined(separator: "\n") + "\n"
        let stats = Binary.temp("http-lua.json")
        let r = try await Binary.runOffPool(["run", path, "--stats-json", stats], input: input)
        #expect(r.status == 0, "\(r.stderr)")
        let out = try r.lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:] }
        #expect(out.count == 10, "\(r.stdout)")
        guard out.count == 10 else { return }
        #expect(out[0]["status"] as? Int == 200 && (out[0]["json"] as? [String: Any])?["country"] as? String == "X7", "\(out[0])")
        #expect((out[0]["ctype"] as? String)?.hasPrefix("application/json") == true, "\(out[0])")
        #expect(out[1]["status"] as? Int == 500, "a status is an answer, not an error: \(out[1])")
        #expect(out[2]["status"] as? Int == 200 && out[2]["json"] == nil && out[2]["body_len"] as? Int == 16, "\(out[2])")
        #expect((out[3]["error"] as? String)?.contains("timed out") == true, "\(out[3])")
        #expect(out[4]["body_len"] as? Int == (10 << 20) + 2, "\(out[4]["status"] ?? "") \(out[4]["error"] ?? "")")
        let received = (out[5]["json"] as? [String: Any])?["received"] as? [String: Any]
        #expect(received?["a"] as? [Int] == [1, 2] && received?["b"] as? String == "c", "\(out[5])")
        #expect((out[6]["error"] as? String)?.contains("http_hosts") == true, "\(out[6])")
        #expect(out[7]["error"] != nil && out[7]["status"] == nil, "\(out[7])")
        #expect((out[8]["json"] as? [String: Any])?["ip"] as? String == "9.9.9.9", "\(out[8])")
        // A body sent a byte a second: the request's timeout ends it (it ran on for good when
        // only the response's head was timed, sixth blind round).
        #expect((out[9]["error"] as? String)?.contains("timed out") == true, "\(out[9])")
        // The record's own deadline passed while it waited: pcall could not catch that.
        let letters = try String(contentsOfFile: deadLetters, encoding: .utf8).split(separator: "\n")
        #expect(letters.count == 1 && letters.first?.contains("timeout") == true && letters.first?.contains("late") == true,
                "\(letters)")
        let s = try Binary.stats(stats)
        #expect(Binary.balanced(s) && s["dead_lettered"] as? Int == 1, "\(s)")
    }
}
