import LuaPipeCore
import LuaPipeMetrics
import Testing

/// The metrics of a pipeline run in this process, read while it runs (a source that holds
/// back its end, a plugin that waits at a gate).
@Suite("Run metrics from a live pipeline")
struct RunMetricsTests {
    @Test("before the run, every series is there at zero")
    func beforeTheRun() {
        let text = String(decoding: RunMetrics(monitor: RunMonitor(), entries: ["a", "b"]).render(), as: UTF8.self)
        for series in ["luapipe_records_read_total 0", "luapipe_plugin_calls_total{entry=\"b\"} 0",
                       "luapipe_plugin_errors_total{entry=\"a\",kind=\"timeout\"} 0",
                       "luapipe_plugin_call_duration_seconds_count{entry=\"a\"} 0",
                       "luapipe_plugin_call_duration_seconds_bucket{entry=\"b\",le=\"+Inf\"} 0"] {
            #expect(text.contains(series + "\n"), "\(series)")
        }
    }

    @Test("counts, in flight and the histogram as records go through")
    func live() async throws {
        let source = HeldSource(batches: 10, of: 100)
        let gate = Gate()
        let stages = [
            StageSpec(info: PluginInfo(id: "count", name: "count", version: "1"), kind: "swift") { _, _ in Pass() },
            StageSpec(info: PluginInfo(id: "gated", name: "gated", version: "1"), kind: "swift",
                      limits: CallLimits(concurrency: 4)) { _, _ in Gated(gate) },
        ]
        let monitor = RunMonitor()
        let metrics = RunMetrics(monitor: monitor, entries: ["count", "gated"])
        let sink = CountingSink()
        let run = Task { try await Pipeline(stages: stages).run(source: source, sink: sink, monitor: monitor) }

        var s = try await scrape(metrics) { $0["luapipe_records_written_total"] == 1000 }
        #expect(s["luapipe_records_read_total"] == 1000)
        for entry in ["count", "gated"] {
            #expect(s["luapipe_plugin_calls_total{entry=\"\(entry)\"}"] == 1000)
            #expect(s["luapipe_plugin_call_duration_seconds_count{entry=\"\(entry)\"}"] == 1000)
            #expect(s["luapipe_plugin_call_duration_seconds_bucket{entry=\"\(entry)\",le=\"+Inf\"}"] == 1000)
            #expect(s["luapipe_plugin_records_in_flight{entry=\"\(entry)\"}"] == 0)
        }

        gate.close()
        source.release(10)  // ten more records: four wait at the gate, the rest for room
        s = try await scrape(metrics) { $0["luapipe_plugin_records_in_flight{entry=\"gated\"}"] == 4 }
        #expect(s["luapipe_records_read_total"] == 1010)
        #expect(s["luapipe_plugin_records_in_flight{entry=\"count\"}"] == 0)
        #expect(s["luapipe_plugin_calls_total{entry=\"gated\"}"] == 1000, "calls count when their batch is done")

        gate.open()
        source.end()
        let outcome = try await run.value
        #expect(outcome.stats.recordsOut == 1010 && sink.count == 1010)
        s = Samples(metrics.render())
        #expect(s["luapipe_plugin_calls_total{entry=\"gated\"}"] == 1010)
        #expect(s["luapipe_plugin_records_in_flight{entry=\"gated\"}"] == 0)
    }

    /// Renders until `done` holds (at most 120 s: the pipeline shares the two cooperative
    /// threads with every in-process suite of the full run).
    func scrape(_ metrics: RunMetrics, until done: (Samples) -> Bool) async throws -> Samples {
        let end = ContinuousClock.now + .seconds(120)
        var s = Samples(metrics.render())
        while !done(s), ContinuousClock.now < end {
            try await Task.sleep(for: .milliseconds(10))
            s = Samples(metrics.render())
        }
        return s
    }
}

/// The samples of a text exposition, by series as written.
struct Samples {
    var values: [String: Double] = [:]
    init(_ bytes: [UInt8]) {
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
            if let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) { values[String(line[..<space])] = v }
        }
    }
    subscript(_ series: String) -> Double? { values[series] }
}

/// Serves `batches` of `of` records, then holds until `release` or `end`.
final class HeldSource: RecordSource {
    private let state: Locked<(queued: [[InputEvent]], next: Int, ended: Bool)>
    init(batches: Int, of size: Int) {
        state = Locked(([], 1, false))
        for _ in 0..<batches { release(size) }
    }
    func release(_ n: Int) {
        state.withLock { s in
            s.queued.append((0..<n).map { k in .record(Item(number: s.next + k, record: ["n": .int(Int64(s.next + k))])) })
            s.next += n
        }
    }
    func end() { state.withLock { $0.ended = true } }
    func nextBatch(stop: StopFlag) async throws -> [InputEvent]? {
        while !stop.isSet {
            let (batch, ended): ([InputEvent]?, Bool) = state.withLock { s in (s.queued.isEmpty ? nil : s.queued.removeFirst(), s.ended) }
            if let batch { return batch }
            if ended { return nil }
            try await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }
}

final class Gate: Sendable {
    private let shut = Locked(false)
    func close() { shut.withLock { $0 = true } }
    func open() { shut.withLock { $0 = false } }
    func pass() async { while shut.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(5)) } }
}

final class Pass: Plugin {
    func process(_ record: Record, _ context: PluginContext) async throws -> Disposition { .pass }
}

/// A plugin that waits at the gate: up to `concurrency` records in flight.
final class Gated: ConcurrentPlugin {
    let gate: Gate
    init(_ gate: Gate) { self.gate = gate }
    func process(_ record: Record, _ context: PluginContext) async throws -> Disposition {
        await gate.pass()
        return .pass
    }
}

final class CountingSink: RecordSink {
    private let n = Locked(0)
    var count: Int { n.withLock { $0 } }
    func write(_ items: [Item]) async throws { n.withLock { $0 += items.count } }
    func close() async throws {}
}
