import Histogram

/// Counters of one plugin (all instances of one manifest entry).
public struct PluginStats: Sendable {
    public var id: String
    public var kind: String
    public var calls = 0
    public var errors = 0
    public var timeouts = 0
    public var dropped = 0
    public var emitted = 0
    public var disabled = false
    public var totalNanos: UInt64 = 0
    /// The most records one instance had in flight at once.
    public var inFlightMax = 0
    /// Time records spent waiting (on services, timers, host functions), summed over records:
    /// it may exceed the run's elapsed time.
    public var waitNanos: UInt64 = 0
    /// Per-record call latency in microseconds (batched calls count their mean per record).
    public var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .two)

    public init(id: String, kind: String) {
        self.id = id
        self.kind = kind
    }

    public var totalMilliseconds: Double { Double(totalNanos) / 1e6 }
    public var p50Microseconds: UInt64 { latency.totalCount == 0 ? 0 : latency.valueAtPercentile(50) }
    public var p99Microseconds: UInt64 { latency.totalCount == 0 ? 0 : latency.valueAtPercentile(99) }

    mutating func recordCalls(_ n: Int, nanos: UInt64) {
        guard n > 0 else { return }
        calls += n
        totalNanos += nanos
        let perRecord = max(1, nanos / UInt64(n) / 1000)
        _ = latency.record(min(perRecord, 60_000_000), count: UInt64(n))
    }
}

/// The figures of a run (`--stats-json`, docs/reference.md). In every run that ends:
/// `recordsIn + emitted == recordsOut + dropped + deadLettered + failed + abandoned`.
public struct RunStats: Sendable {
    public var recordsIn = 0
    public var recordsOut = 0
    public var dropped = 0
    public var deadLettered = 0
    /// Records whose call failed under `fail` (or whose line failed under
    /// `on_input_error: fail`), or whose call was stuck in C when the run had to end.
    public var failed = 0
    /// Records read but never processed, or processed but never written, because the run
    /// stopped (a failure, a signal) or the output failed or closed.
    public var abandoned = 0
    public var emitted = 0
    /// Input lines (or stream entries) that were not records; each is also counted where its
    /// `on_input_error` put it (dropped, dead_lettered or failed). Not in `json` nor `table`.
    public var inputErrors = 0
    public var elapsedSeconds = 0.0
    public var plugins: [PluginStats] = []

    public init() {}

    public var balanced: Bool { recordsIn + emitted == recordsOut + dropped + deadLettered + failed + abandoned }

    /// The `--stats-json` document.
    public var json: Value {
        .object(Record([
            "records_in": .int(Int64(recordsIn)), "records_out": .int(Int64(recordsOut)),
            "dropped": .int(Int64(dropped)), "dead_lettered": .int(Int64(deadLettered)),
            "failed": .int(Int64(failed)), "abandoned": .int(Int64(abandoned)), "emitted": .int(Int64(emitted)),
            "elapsed_s": .double((elapsedSeconds * 1000).rounded() / 1000),
            "plugins": .array(plugins.map { p in
                .object(Record([
                    "id": .string(p.id), "kind": .string(p.kind), "calls": .int(Int64(p.calls)),
                    "errors": .int(Int64(p.errors)), "timeouts": .int(Int64(p.timeouts)),
                    "dropped": .int(Int64(p.dropped)), "emitted": .int(Int64(p.emitted)),
                    "disabled": .bool(p.disabled), "total_ms": .double((p.totalMilliseconds * 1000).rounded() / 1000),
                    "in_flight_max": .int(Int64(p.inFlightMax)), "wait_ms": .double((Double(p.waitNanos) / 1e3).rounded() / 1000),
                    "p50_us": .int(Int64(p.p50Microseconds)), "p99_us": .int(Int64(p.p99Microseconds)),
                ]))
            }),
        ]))
    }

    /// A table for `--stats` on stderr.
    public var table: String {
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        var lines = [
            "records in \(recordsIn), out \(recordsOut), dropped \(dropped), dead-lettered \(deadLettered), failed \(failed), abandoned \(abandoned), emitted \(emitted), \(String(format1: elapsedSeconds)) s",
        ]
        let idWidth = max(6, plugins.map(\.id.count).max() ?? 0)
        lines.append(pad("plugin", idWidth) + "  " + pad("kind", 10) + lpad("calls", 9) + lpad("errors", 8) + lpad("timeouts", 9)
            + lpad("dropped", 9) + lpad("emitted", 9) + lpad("total ms", 10) + lpad("p50 µs", 8) + lpad("p99 µs", 8)
            + lpad("in flight", 10) + lpad("wait ms", 10) + "  disabled")
        for p in plugins {
            lines.append(pad(p.id, idWidth) + "  " + pad(p.kind, 10) + lpad("\(p.calls)", 9) + lpad("\(p.errors)", 8)
                + lpad("\(p.timeouts)", 9) + lpad("\(p.dropped)", 9) + lpad("\(p.emitted)", 9)
                + lpad(String(format1: p.totalMilliseconds), 10) + lpad("\(p.p50Microseconds)", 8)
                + lpad("\(p.p99Microseconds)", 8) + lpad("\(p.inFlightMax)", 10)
                + lpad(String(format1: Double(p.waitNanos) / 1e6), 10) + "  " + (p.disabled ? "yes" : "no"))
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    /// One decimal, without Foundation.
    init(format1 v: Double) {
        let scaled = (v * 10).rounded()
        let whole = Int64(scaled / 10)
        let frac = Int64(abs(scaled.truncatingRemainder(dividingBy: 10)))
        self = "\(whole).\(frac)"
    }
}
