
/// What every task of a run shares: the run-wide counters, the first failure, the stop flag.
final class RunState: Sendable {
    struct Counters {
        var recordsIn = 0
        var recordsOut = 0
        var dropped = 0
        var deadLettered = 0
        var failed = 0
        var emitted = 0
        var failure: PipelineError?
        var outputClosed = false
    }

    let counters = Locked(Counters())
    let stop: StopFlag

    init(stop: StopFlag) { self.stop = stop }

    func update(_ body: (inout Counters) -> Void) { counters.withLock { body(&$0) } }

    /// Records the first failure; the run stops reading and ends with it.
    func fail(_ error: PipelineError, records: Int) {
        counters.withLock { c in
            if c.failure == nil { c.failure = error }
            c.failed += records
        }
        stop.set()
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
