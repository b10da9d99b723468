
/// The dedicated threads that run Lua and synchronous Swift plugins (`--workers`).
/// Instances are placed round-robin; an instance stays on its thread for its whole life.
public final class WorkerPool: Sendable {
    public let workers: [WorkerThread]
    private let nextIndex = Locked(0)

    public init(count: Int, name: String = "luapipe-worker") {
        workers = (0..<max(1, count)).map { WorkerThread(name: "\(name)-\($0)") }
    }

    /// The thread for the next instance.
    public func next() -> WorkerThread {
        nextIndex.withLock { i in
            defer { i = (i + 1) % workers.count }
            return workers[i]
        }
    }

    public func shutdown() {
        for w in workers { w.shutdown() }
    }
}
