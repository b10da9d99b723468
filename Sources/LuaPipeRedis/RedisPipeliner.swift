import LuaPipeCore

/// One connection shared by many tasks, its commands pipelined: whatever was sent while the
/// connection's thread was busy goes out as one batch, one round trip for all of it. So 64
/// records in flight that each call `ctx.shared:incr` cost a few round trips, not 64.
///
/// - Important: the round trips run on the connection's own thread (`RedisConnection.worker`),
///   never on the cooperative pool. A task cancelled while its command waits gets a
///   `CancellationError` at once; a command not yet sent then is never sent, one already sent
///   has its reply dropped.
final class RedisPipeliner: Sendable {
    let connection: RedisConnection
    private let queue = Locked<(jobs: [Job], draining: Bool)>(([], false))

    init(_ connection: RedisConnection) { self.connection = connection }

    /// Sends one command and awaits its reply.
    func send(_ command: [[UInt8]]) async throws -> RedisReply {
        let job = Job(command)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<RedisReply, any Error>) in
                guard job.start(c) else { return }  // cancelled before it was queued
                let drain = queue.withLock { q -> Bool in
                    q.jobs.append(job)
                    defer { q.draining = true }
                    return !q.draining
                }
                if drain { connection.worker.submit { self.drain() } }
            }
        } onCancel: {
            job.finish(.failure(CancellationError()))
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
        private enum State { case queued, waiting(CheckedContinuation<RedisReply, any Error>), done }
        private let state = Locked<State>(.queued)

        init(_ command: [[UInt8]]) { self.command = command }

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
