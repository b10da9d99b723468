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
}
