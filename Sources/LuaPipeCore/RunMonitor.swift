import Synchronization

/// A live view of a run's figures, for a monitor that reads them while the run goes on
/// (`luapipe run --metrics`).
///
/// Nothing is pushed to the monitor: it reads, when asked, what the run keeps anyway (the
/// run-wide counters, each entry's figures as of its last batch, the records each entry has
/// in flight), so the pipeline does the same work with a monitor as without one. Figures
/// move a batch at a time: an entry's calls count once its batch is done.
/// - Important: `snapshot()` may be called from any thread, at any time; it takes the run's
///   locks briefly and never waits for a batch.
public final class RunMonitor: Sendable {
    private let run = Locked<RunState?>(nil)

    public init() {}

    /// Called by the pipeline once its instances are set up, before the first record is read.
    func attach(_ state: RunState) { run.withLock { $0 = state } }

    /// The figures as they stand: nil until the pipeline has set up its instances.
    public func snapshot() -> Snapshot? {
        guard let state = run.withLock({ $0 }) else { return nil }
        var stats = RunState.snapshot(state)
        let published = state.published.withLock { $0 }
        stats.plugins = state.entries.map { e in published[e.id] ?? PluginStats(id: e.id, kind: e.kind) }
        return Snapshot(stats: stats, inFlight: state.inFlight.map(\.value))
    }

    public struct Snapshot: Sendable {
        /// The run's figures; `plugins` in pipeline order, as of each entry's last batch
        /// (`elapsedSeconds` is not set).
        public var stats: RunStats
        /// Records whose call of each entry (in pipeline order) has started and not returned:
        /// those an instance has in flight while they wait, or one per instance busy with a
        /// batch of a plugin that does not wait.
        public var inFlight: [Int]
    }
}

/// Records one entry has in flight now, summed over its instances: moved by the stage twice
/// per batch and instance, and by a plugin that waits each time it reports its count (under
/// the lock it takes for `CallMetrics` anyway), with one relaxed atomic add.
final class InFlightCount: Sendable {
    private let count = Atomic<Int>(0)

    init() {}

    func add(_ n: Int) {
        if n != 0 { count.add(n, ordering: .relaxed) }
    }

    var value: Int { count.load(ordering: .relaxed) }
}
