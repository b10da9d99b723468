import LuaPipeCore

/// One connection shared by many tasks, its commands pipelined: whatever was sent while the
/// connection's thread was busy goes out as one batch, one round trip for all of it. So 64
/// records in flight that each call `ctx.shared:incr` cost a few round trips, not 64.
///
/// - Important: the round trips run on the connection's own thread (`RedisConnection.worker`),
///   never on the cooperative pool. A task cancelled while its command waits gets a
///   `CancellationError` at once, and one whose deadline passes a `DeadlinePassed` (within
///   10 ms: one sweeper for every call in flight, not a timer each); a command not yet sent
///   then is never sent, one already sent has its reply dropped.
final class RedisPipeliner: Sendable {
    let connection: RedisConnection
    private struct Queue {
        var jobs: [Job] = []
        var draining = false
        /// Calls with a deadline not yet answered (finished ones are pruned by the sweeper).
        var timed: [Job] = []
        var sweeping = false
    }
    private let queue = Locked(Queue())

    struct DeadlinePassed: Error {}

    init(_ connection: RedisConnection) { self.connection = connection }

    /// Sends one command and awaits its reply, at most until `deadline`.
    func send(_ command: [[UInt8]], until deadline: ContinuousClock.Instant? = nil) async throws -> RedisReply {
        let job = Job(command, deadline)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<RedisReply, any Error>) in
                guard job.start(c) else { return }  // cancelled before it was queued
                let (drain, sweep) = queue.withLock { q -> (Bool, Bool) in
                    q.jobs.append(job)
                    defer { q.draining = true }
                    guard deadline != nil else { return (!q.draining, false) }
                    q.timed.append(job)
                    defer { q.sweeping = true }
                    return (!q.draining, !q.sweeping)
                }
                if drain { connection.worker.submit { self.drain() } }
                if sweep { Task { await self.sweep() } }
            }
        } onCancel: {
            job.finish(.failure(CancellationError()))
        }
    }

    /// Every 10 ms while calls with a deadline are in flight: fails those past it.
    private func sweep() async {
        while true {
            try? await Task.sleep(for: .milliseconds(10))
            let now = ContinuousClock.now
            let (expired, done) = queue.withLock { q -> ([Job], Bool) in
                q.timed.removeAll { $0.finished }
                if q.timed.isEmpty { q.sweeping = false }  // a later call starts a new sweeper
                return (q.timed.filter { $0.deadline! <= now }, q.timed.isEmpty)
            }
            for job in expired { job.finish(.failure(DeadlinePassed())) }
            if done { return }
        }
    }

    /// On the connection's thread: sends what is queued, in batches, until nothing is.
    private func drain() {
        while true {
            let jobs = queue.withLock { q -> [Job] in
                let taken = q.jobs
                q.jobs = []
                if taken.isEmpty { q.draining = false }
                return taken
            }
            if jobs.isEmpty { return }
            let live = jobs.filter { !$0.finished }
            if live.isEmpty { continue }
            do {
                let replies = try connection.pipelineOnWorker(live.map(\.command))
                for (job, reply) in zip(live, replies) { job.finish(.success(reply)) }
            } catch {
                for job in live { job.finish(.failure(error)) }
            }
        }
    }

    /// A command and the task that awaits its reply; finished once, by the reply or by the
    /// task's cancellation, whichever comes first.
    final class Job: Sendable {
        let command: [[UInt8]]
        let deadline: ContinuousClock.Instant?
        private enum State { case queued, waiting(CheckedContinuation<RedisReply, any Error>), done }
        private let state = Locked<State>(.queued)

        init(_ command: [[UInt8]], _ deadline: ContinuousClock.Instant?) {
            self.command = command
            self.deadline = deadline
        }

        /// Sets the continuation; false (and it is resumed) when the job is already done.
        func start(_ c: CheckedContinuation<RedisReply, any Error>) -> Bool {
            let ok = state.withLock { s -> Bool in
                guard case .queued = s else { return false }
                s = .waiting(c)
                return true
            }
            if !ok { c.resume(throwing: CancellationError()) }
            return ok
        }

        var finished: Bool { state.withLock { if case .done = $0 { true } else { false } } }

        func finish(_ result: Result<RedisReply, any Error>) {
            let c = state.withLock { s -> CheckedContinuation<RedisReply, any Error>? in
                defer { s = .done }
                if case .waiting(let c) = s { return c }
                return nil
            }
            c?.resume(with: result)
        }
    }
}
