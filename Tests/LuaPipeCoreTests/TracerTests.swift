import Foundation
@testable import LuaPipeCore
import Testing

@Suite("--trace keeps a bounded number of events")
struct TracerTests {
    @Test("a wait's name is kept to 200 bytes: a plugin chooses ctx.call's name")
    func longWaitNames() throws {
        let tracer = Tracer()
        let name = "ctx.call " + String(repeating: "é", count: 128 << 10)
        for i in 0..<100 { tracer.wait(name, plugin: "p", record: i, since: .now) }
        // 100 events of 256 KiB names made a 50 MB trace; 4,000 of them a gigabyte of memory.
        let json = tracer.json()
        #expect(json.count < 100 * 2 * 400, "\(json.count) bytes")
        #expect(String(decoding: json, as: UTF8.self).contains("ctx.call éé"))
    }

    @Test("past the first 200,000 events the rest are counted, not kept, and the trace says so")
    func cap() throws {
        let tracer = Tracer()
        let start = ContinuousClock.now
        for n in 1...(Tracer.maxEvents + 10) { tracer.wait("luapipe.sleep", plugin: "p", record: n, since: start) }
        let doc = try JSONSerialization.jsonObject(with: Data(tracer.json())) as? [String: Any]
        let events = doc?["traceEvents"] as? [[String: Any]] ?? []
        // Each kept wait is a begin and an end; then one note.
        #expect(events.count == 2 * Tracer.maxEvents + 1)
        #expect(events.last?["name"] as? String == "luapipe: 10 events past the first 200000 were not kept", "\(events.last ?? [:])")
        let records = events.compactMap { ($0["args"] as? [String: Any])?["record"] as? Int }
        #expect(records.max() == Tracer.maxEvents, "the first events are the ones kept")
    }
}
