import Histogram
import LuaPipeCore
import Prometheus

/// A run's figures as Prometheus metrics (docs/reference.md, "Metrics").
///
/// The pipeline is not told about the metrics: at each scrape, `render` reads a
/// `RunMonitor` snapshot (the counters the run keeps anyway, each entry's figures as of its
/// last batch) and sets the registry's metrics to it, so the work per record is the same
/// with `--metrics` as without.
/// - Important: `render` may be called from any thread; scrapes are serialised by a lock.
public final class RunMetrics: Sendable {
    private let monitor: RunMonitor
    private let registry = PrometheusCollectorRegistry()
    private let entries: [String]
    private let run: [(counter: Counter, value: @Sendable (RunStats) -> Int)]
    private let calls: [Counter]
    private let errors: [Counter]
    private let timeouts: [Counter]
    private let inFlight: [Gauge]
    /// The Redis gauges, once the first answer is in.
    private let pending = Locked<[String: Gauge]>([:])
    /// Serialises scrapes: counters are set from the snapshot, then emitted.
    private let scrape = Locked<Void>(())

    public static let durationName = "luapipe_plugin_call_duration_seconds"
    /// Upper bounds of the call duration buckets, in seconds: from 10 µs (a Lua call that
    /// changes a field) to a minute (a call that waits on a slow service).
    public static let buckets: [Double] = [
        0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
        0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
    ]

    /// `entries`: the manifest's entry ids in pipeline order (each gets its series at once,
    /// zero until its first batch).
    public init(monitor: RunMonitor, entries: [String]) {
        self.monitor = monitor
        self.entries = entries
        let r = registry
        func counter(_ name: String, _ help: String, _ value: @escaping @Sendable (RunStats) -> Int)
            -> (counter: Counter, value: @Sendable (RunStats) -> Int) {
            (r.makeCounter(descriptor: Self.name(name, "total", help)), value)
        }
        run = [
            counter("records_read", "Records read from the input (records_in).", { $0.recordsIn }),
            counter("records_written", "Records written to the output (records_out).", { $0.recordsOut }),
            counter("records_dropped", "Records dropped on purpose.", { $0.dropped }),
            counter("records_dead_lettered", "Records and input lines written as dead letters.", { $0.deadLettered }),
            counter("records_failed", "Records whose call (or line) failed under fail.", { $0.failed }),
            counter("records_abandoned", "Records read and never processed or written because the run stopped.", { $0.abandoned }),
            counter("records_emitted", "Records plugins emitted.", { $0.emitted }),
            counter("input_errors", "Input lines or stream entries that were not records.", { $0.inputErrors }),
        ]
        let calls = Self.name("plugin_calls", "total", "Calls of the entry's process, one per record.")
        let errors = Self.name("plugin_errors", "total", "Calls of the entry that failed, by kind: timeout, or error for any other failure.")
        let inFlight = Self.name("plugin_records_in_flight", "", "Records whose call of the entry has started and not returned.")
        self.calls = entries.map { r.makeCounter(descriptor: calls, labels: [("entry", $0)]) }
        self.errors = entries.map { r.makeCounter(descriptor: errors, labels: [("entry", $0), ("kind", "error")]) }
        timeouts = entries.map { r.makeCounter(descriptor: errors, labels: [("entry", $0), ("kind", "timeout")]) }
        self.inFlight = entries.map { r.makeGauge(descriptor: inFlight, labels: [("entry", $0)]) }
    }

    /// `luapipe_NAME_UNIT`.
    private static func name(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "luapipe", metricName: name, unitName: unit, helpText: help)
    }

    /// Sets the Redis consumer group's pending count (XPENDING), once known.
    public func setPending(_ count: Int, stream: String, group: String) {
        let gauge = pending.withLock { p in
            let key = stream + "\u{0}" + group
            if let g = p[key] { return g }
            let d = Self.name("redis_pending", "", "Entries the consumer group has delivered and not seen acknowledged (XPENDING), polled every second.")
            let g = registry.makeGauge(descriptor: d, labels: [("stream", stream), ("group", group)])
            p[key] = g
            return g
        }
        gauge.set(to: Double(count))
    }

    /// The Prometheus text exposition (format 0.0.4) of the run as it stands.
    public func render() -> [UInt8] {
        scrape.withLock { _ in
            let snapshot = monitor.snapshot()
            let stats = snapshot?.stats ?? RunStats()
            for r in run { set(r.counter, r.value(stats)) }
            // By id: an entry the run does not know (yet) stays at zero.
            let index = Dictionary(stats.plugins.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })
            let plugins = entries.map { id in index[id].map { stats.plugins[$0] } ?? PluginStats(id: id, kind: "") }
            for (i, p) in plugins.enumerated() {
                set(calls[i], p.calls)
                set(errors[i], p.errors - p.timeouts)
                set(timeouts[i], p.timeouts)
                inFlight[i].set(to: Double(index[entries[i]].flatMap { snapshot?.inFlight[safe: $0] } ?? 0))
            }
            var out: [UInt8] = []
            out.reserveCapacity(4096 + 2048 * entries.count)
            registry.emit(into: &out)
            Self.histograms(plugins, into: &out)
            return out
        }
    }

    /// A counter that goes to `value` (the run's figures only grow).
    private func set(_ counter: Counter, _ value: Int) {
        counter.reset()
        counter.increment(by: Int64(max(0, value)))
    }

    /// The call duration histograms, from the latencies each entry's figures already keep
    /// (HdrHistogram, microseconds, two significant digits): the registry's histograms take
    /// one observation at a time, and recording each call there would add work per record.
    static func histograms(_ plugins: [PluginStats], into out: inout [UInt8]) {
        let name = durationName
        out += Array("# HELP \(name) Time per call of the entry's process: a batch's time divided by its calls.\n".utf8)
        out += Array("# TYPE \(name) histogram\n".utf8)
        for p in plugins {
            let entry = "entry=\"\(escape(p.id))\""
            for le in buckets {
                let n = p.latency.totalCount == 0 ? 0 : p.latency.count(within: 0...UInt64((le * 1e6).rounded()))
                out += Array("\(name)_bucket{\(entry),le=\"\(le)\"} \(n)\n".utf8)
            }
            let count = p.latency.totalCount
            out += Array("\(name)_bucket{\(entry),le=\"+Inf\"} \(count)\n".utf8)
            let sum = count == 0 ? 0 : p.latency.mean * Double(count) / 1e6
            out += Array("\(name)_sum{\(entry)} \(sum)\n".utf8)
            out += Array("\(name)_count{\(entry)} \(count)\n".utf8)
        }
    }

    /// A label value as the text format wants it: backslash, quote and newline escaped.
    static func escape(_ s: String) -> String {
        var r = ""
        for c in s {
            switch c {
            case "\\": r += "\\\\"
            case "\"": r += "\\\""
            case "\n": r += "\\n"
            default: r.append(c)
            }
        }
        return r
    }
}

extension Array {
    fileprivate subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}
