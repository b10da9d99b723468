import LuaPipe
import LuaPipeCore
import LuaPipeTesting
import Testing

@Suite("Ticks and the blocking host API")
struct LifecycleTests {
    @Test("tick runs every tick_ms while records flow, and what it emits goes downstream", arguments: ScenarioTests.Kind.allCases)
    func ticks(_ kind: ScenarioTests.Kind) async throws {
        let (outcome, sink, _) = try await ScenarioTests.run(
            kind == .lua ? .lua : kind, "  - use: ticker\n    tick_ms: 20\n", [], source: EndlessSourceLimited(count: 30, every: .milliseconds(10)))
        #expect(outcome.error == nil)
        let ticks = sink.records.filter { $0["tick"] != nil }
        #expect(ticks.count >= 3, "\(ticks.count) ticks in about 300 ms")
        #expect(outcome.stats.balanced)
    }

    @Test("a synchronous caller can run a pipeline with runBlocking")
    func blocking() throws {
        let spec = StageSpec(info: PluginInfo(id: "set", name: "set", version: "1"), kind: "swift") { _, _ in Upper() }
        let sink = CollectingSink()
        let outcome = try Pipeline(stages: [spec]).runBlocking(source: ArraySource([["s": "a"], ["s": "b"]]), sink: sink)
        #expect(outcome.error == nil)
        #expect(sink.lines == [#"{"s":"A"}"#, #"{"s":"B"}"#])
    }
}

final class Upper: Plugin {
    func process(_ record: Record, _ context: PluginContext) async throws -> Disposition {
        var r = record
        r["s"] = .string(r["s"]?.stringValue?.uppercased() ?? "")
        return .replace(r)
    }
}

/// `count` records, one every `every`, then the end.
final class EndlessSourceLimited: RecordSource {
    let inner: EndlessSource
    let count: Int
    let served = Locked(0)
    init(count: Int, every: Duration) {
        inner = EndlessSource(every: every)
        self.count = count
    }
    func nextBatch(stop: StopFlag) async throws -> [InputEvent]? {
        if served.withLock({ $0 >= count }) { return nil }
        served.withLock { $0 += 1 }
        return try await inner.nextBatch(stop: stop)
    }
}

