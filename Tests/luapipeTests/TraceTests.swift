import Foundation
import Testing

@Suite("luapipe run --trace, end to end")
struct TraceTests {
    @Test("the trace is valid trace-event JSON with an event for each kind of plugin call")
    func trace() async throws {
        let path = Binary.temp("trace-\(UUID().uuidString).json")
        let (p, input, output, _) = try Binary.start(["run", "trace.yaml", "--trace", path])
        let out = Collector(output.fileHandleForReading)
        input.fileHandleForWriting.write(Data("{\"name\":\"a\"}\n".utf8))
        usleep(1_000_000)  // long enough for ticks every 10 ms, also on a loaded machine
        input.fileHandleForWriting.write(Data("{\"name\":\"b\"}\n".utf8))
        try input.fileHandleForWriting.close()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(out.text() == "{\"name\":\"A\",\"traced\":true}\n{\"name\":\"B\",\"traced\":true}\n")
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        let events = doc?["traceEvents"] as? [[String: Any]] ?? []
        let calls = events.filter { $0["ph"] as? String == "X" }
        let names = Set(calls.compactMap { $0["name"] as? String })
        #expect(names.isSuperset(of: ["setup", "process", "tick", "flush", "teardown"]), "\(names)")
        let plugins = Set(calls.compactMap { ($0["args"] as? [String: Any])?["plugin"] as? String })
        // Each entry by its id; consecutive Lua and sync entries on shared workers also as one
        // fused stage ("upper+set"). throttle is the async one.
        #expect(plugins.isSuperset(of: ["lifecycle", "upper", "set", "throttle"]), "\(plugins)")
        let entries: Set<Substring> = ["lifecycle", "upper", "set", "throttle"]
        #expect(plugins.allSatisfy { $0.split(separator: "+").allSatisfy(entries.contains) }, "\(plugins)")
        let tracks = events.filter { $0["ph"] as? String == "M" }.compactMap { ($0["args"] as? [String: Any])?["name"] as? String }
        #expect(tracks.contains("async plugins") && tracks.contains { $0.hasPrefix("luapipe-worker-") }, "\(tracks)")
        #expect(calls.allSatisfy { ($0["dur"] as? Double ?? -1) >= 0 && ($0["ts"] as? Double ?? -1) >= 0 })
    }

    /// The trace's wait events of a run: (name, record) of each "b" event, and whether every
    /// one has its "e".
    static func waits(_ path: String) throws -> (begun: [(String, Int)], closed: Bool) {
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        let events = (doc?["traceEvents"] as? [[String: Any]] ?? []).filter { $0["cat"] as? String == "wait" }
        let begun = events.filter { $0["ph"] as? String == "b" }
        let ends = Set(events.filter { $0["ph"] as? String == "e" }.compactMap { $0["id"] as? Int })
        return (begun.map { ($0["name"] as? String ?? "", ($0["args"] as? [String: Any])?["record"] as? Int ?? 0) },
                begun.allSatisfy { ends.contains($0["id"] as? Int ?? -1) })
    }

    @Test("each wait of a Lua plugin and each call of a concurrent plugin in flight is an event of its own")
    func waits() async throws {
        let path = Binary.temp("trace-waits-\(UUID().uuidString).json")
        let manifest = Binary.temp("trace-waiter.yaml")
        try "api: 1\nplugin_paths: [\(Binary.fixtures)/plugins]\nplugins:\n  - use: waiter\n    config: { seconds: 0.05 }\n"
            .write(toFile: manifest, atomically: true, encoding: .utf8)
        let input = Binary.records(10)
        let r = try await Binary.runOffPool(["run", manifest, "--trace", path], input: input)
        #expect(r.status == 0, "\(r.stderr)")
        let lua = try Self.waits(path)
        #expect(lua.begun.map(\.0) == Array(repeating: "luapipe.sleep", count: 10), "\(lua.begun)")
        #expect(Set(lua.begun.map(\.1)) == Set(1...10) && lua.closed, "\(lua.begun)")

        let server = try TestServer()
        defer { server.stop() }
        let m = try HTTPTests.manifest("trace", "    config: { url: \"http://127.0.0.1:\(server.port)/geo/{id}?ms=20\", into: g }\n")
        let h = try await Binary.runOffPool(["run", m, "--trace", path], input: input)
        #expect(h.status == 0, "\(h.stderr)")
        let swift = try Self.waits(path)
        #expect(swift.begun.count == 10 && swift.begun.allSatisfy { $0.0 == "process" } && swift.closed, "\(swift.begun)")
        #expect(Set(swift.begun.map(\.1)) == Set(1...10), "\(swift.begun)")
    }
}
