
/// What every task of a run shares: the run-wide counters, the first failure, the stop flag.
final class RunState: Sendable {
    struct Counters {
        var recordsIn = 0
        var recordsOut = 0
        var dropped = 0
        var deadLettered = 0
        var failed = 0
        var abandoned = 0
        var emitted = 0
        /// Lines (or stream entries) that were not records, whatever their policy made of them.
        var inputErrors = 0
        var failure: PipelineError?
        /// The input record whose failure stops the run: those read after it need no work.
        var failedAt: Int?
        var outputClosed = false
    }

    let counters = Locked(Counters())
    let stop: StopFlag
    /// What records in flight may hold on the host.
    let budget: HostBudget
    /// Each entry's figures as of its last batch, for an outcome made while a stage is stuck
    /// and for a `RunMonitor`.
    let published: Locked<[String: PluginStats]> = Locked([:])
    /// The entries in pipeline order, and the records each has in flight now.
    let entries: [(id: String, kind: String)]
    let inFlight: [InFlightCount]
    /// When flush and teardown must be done by, once the run is stopping (set on first use).
    private let budgetEnd = Locked<ContinuousClock.Instant?>(nil)
    /// What flush and teardown share once the run is stopping (docs/reference.md, "Shutdown").
    static let shutdownBudget = Duration.seconds(2)

    init(stop: StopFlag, budget: HostBudget, stages: [StageSpec] = []) {
        self.stop = stop
        self.budget = budget
        entries = stages.map { ($0.info.id, $0.kind) }
        inFlight = stages.map { _ in InFlightCount() }
    }

    /// Keeps a copy of the entries' figures (after each batch).
    func publish(_ members: [Member]) {
        published.withLock { p in for m in members { p[m.spec.info.id] = m.stats } }
    }

    /// The time a flush or teardown call may take: its own timeout, or, once the run is
    /// stopping, what is left of the shutdown budget (nil: nothing is left, skip the call).
    func lifecycleTimeout(_ timeout: Duration, floor: Duration = .zero) -> Duration? {
        guard stop.halts else { return timeout }
        let now = ContinuousClock.now
        let end = budgetEnd.withLock { end in
            if end == nil { end = now + Self.shutdownBudget }
            return end!
        }
        let left = max(end - now, floor)
        return left > .zero ? min(timeout, left) : nil
    }

    func update(_ body: (inout Counters) -> Void) { counters.withLock { body(&$0) } }

    /// Records the first failure; the run stops reading and ends with it. `failed` records
    /// are those whose call (or line) failed; `abandoned` ones were read but will never be
    /// processed or written because of it.
    func fail(_ error: PipelineError, failed: Int = 0, abandoned: Int = 0) {
        counters.withLock { c in
            if c.failure == nil {
                c.failure = error
                c.failedAt = error.recordNumber
            }
            c.failed += failed
            c.abandoned += abandoned
        }
        stop.setFailed()
    }

    /// The records of `items` that still need work: all of them, unless the run failed at a
    /// record, and then those that stem from records read before it (and from tick or flush).
    /// The others are counted abandoned.
    func needed(_ items: [Item]) -> [Item] {
        guard let at = counters.withLock({ $0.failedAt }) else { return items }
        var kept: [Item] = [], dropped: [Item] = []
        for item in items { if item.number <= at { kept.append(item) } else { dropped.append(item) } }
        abandon(dropped)
        return kept
    }

    /// Counts `items` abandoned and releases what they held.
    func abandon(_ items: [Item]) {
        abandon(items.count)
        budget.adjust(-HostBudget.bytes(items))
    }

    /// Interrupts `instance` if the run halts while `body` runs and the shutdown budget is
    /// spent before it returns (a flush or setup that started with a long timeout).
    static func interruptible<T>(_ stop: StopFlag, _ instance: Instance, cutting: Bool = false,
                                 _ body: () async throws -> T) async rethrows -> T {
        let plugin = UnsafeTransfer(instance.plugin)
        let context = instance.context
        let guardTask = Task {
            while !Task.isCancelled, !stop.halts { try? await Task.sleep(for: .milliseconds(50)) }
            if Task.isCancelled { return }
            if cutting {  // a setup has nothing to finish
                context.callDeadline = .now
                plugin.value.interrupt()
                return
            }
            try? await Task.sleep(for: shutdownBudget)
            if !Task.isCancelled { plugin.value.interrupt() }
        }
        defer { guardTask.cancel() }
        return try await body()
    }

    /// Runs `body` (a setup) unless the run halts and it has not returned `after` that: then
    /// throws, and the call is left on its thread until the process exits. One instruction
    /// stuck in C (a quadratic rehash) or a synchronous Swift setup that ignores its deadline
    /// held a signalled run for minutes.
    static func abandonable<T: Sendable>(_ stop: StopFlag, after: Duration,
                                          _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let once = Locked(false)
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            @Sendable func finish(_ r: Result<T, any Error>) {
                if once.withLock({ done in defer { done = true }; return !done }) { c.resume(with: r) }
            }
            Task {
                do { finish(.success(try await body())) } catch { finish(.failure(error)) }
            }
            Task {
                while !stop.halts, !once.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(50)) }
                if once.withLock({ $0 }) { return }
                try? await Task.sleep(for: after)
                finish(.failure(AbandonedCall()))
            }
        }
    }

    /// Counts records that will never be processed or written (the run is stopping).
    func abandon(_ records: Int) {
        guard records > 0 else { return }
        counters.withLock { $0.abandoned += records }
    }

    /// The run-wide figures as they stand (plugins' figures not included).
    static func snapshot(_ run: RunState) -> RunStats {
        var stats = RunStats()
        run.update { c in
            stats.recordsIn = c.recordsIn
            stats.recordsOut = c.recordsOut
            stats.dropped = c.dropped
            stats.deadLettered = c.deadLettered
            stats.failed = c.failed
            stats.abandoned = c.abandoned
            stats.emitted = c.emitted
            stats.inputErrors = c.inputErrors
        }
        return stats
    }

    var failed: Bool { counters.withLock { $0.failure != nil } }
    var outputClosed: Bool { counters.withLock { $0.outputClosed } }
}

/// Runs `body` against a timer and throws a timeout error if the timer wins. The body is
/// cancelled then; the group still waits for it, so one that ignores cancellation delays the
/// caller until it returns (and the call has failed with a timeout all the same).
func withTimeout<T: Sendable>(_ timeout: Duration?, _ what: String,
                              _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    guard let timeout else { return try await body() }
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try? await Task.sleep(for: timeout)
            if Task.isCancelled { return nil }
            throw PipelineError(.timeout, "timeout: \(what) ran past \(timeout.milliseconds) ms")
        }
        defer { group.cancelAll() }
        while let next = try await group.next() {
            if let value = next { return value }
        }
        throw PipelineError(.cancelled, "cancelled")
    }
}

extension Duration {
    public var milliseconds: Int64 {
        let (s, a) = components
        return s * 1000 + a / 1_000_000_000_000_000
    }

    public var nanoseconds: UInt64 {
        let (s, a) = components
        return UInt64(max(0, s)) * 1_000_000_000 + UInt64(max(0, a / 1_000_000_000))
    }
}

/// A call that did not return after the run was stopped, given up on (its thread is left to
/// the process's exit, its instance is not torn down).
public struct AbandonedCall: Error, CustomStringConvertible {
    public var description: String { "the call did not return after the run was stopped; it was abandoned" }
}
