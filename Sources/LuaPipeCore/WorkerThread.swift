#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import DequeModule

/// A dedicated OS thread that runs blocking jobs one at a time, in submission order.
///
/// The one home of blocking work (Lua and synchronous Swift plugins, file reads): these never
/// run on Swift's cooperative pool. `run` bridges with a continuation, like swift-nio's
/// `NIOThreadPool.runIfActive`.
/// - Important: a job must not wait for another job of the same worker.
public final class WorkerThread: @unchecked Sendable {
    // Safe because `jobs`, `stopping` are only touched with `mutex` held.
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var jobs = Deque<() -> Void>()
    private var stopping = false
    private var running = false
    private var thread: pthread_t?
    public let name: String

    /// Set by the worker for the thread it runs on: lets confined values check their thread.
    private static let currentKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    public init(name: String) {
        self.name = name
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
        let box = Unmanaged.passRetained(self)
        var t = pthread_t()
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        // Lua's C stack needs room for LUAI_MAXCCALLS (200) nested C calls plus our frames.
        pthread_attr_setstacksize(&attr, 8 << 20)
        let rc = pthread_create(&t, &attr, { arg in
            let worker = Unmanaged<WorkerThread>.fromOpaque(arg!).takeRetainedValue()
            worker.loop()
            return nil
        }, box.toOpaque())
        pthread_attr_destroy(&attr)
        precondition(rc == 0, "cannot start worker thread \(name): error \(rc)")
        thread = t
    }

    deinit {
        pthread_cond_destroy(&cond)
        pthread_mutex_destroy(&mutex)
    }

    /// True when the calling code runs on this worker's thread.
    public var isCurrent: Bool {
        pthread_getspecific(Self.currentKey) == Unmanaged.passUnretained(self).toOpaque()
    }

    /// True when the calling code runs on any worker thread.
    public static var onWorkerThread: Bool { pthread_getspecific(currentKey) != nil }

    private func loop() {
        pthread_setspecific(Self.currentKey, Unmanaged.passUnretained(self).toOpaque())
        while true {
            pthread_mutex_lock(&mutex)
            while jobs.isEmpty && !stopping { pthread_cond_wait(&cond, &mutex) }
            if jobs.isEmpty && stopping {
                pthread_mutex_unlock(&mutex)
                return
            }
            let job = jobs.removeFirst()
            running = true
            pthread_mutex_unlock(&mutex)
            job()
            pthread_mutex_lock(&mutex)
            running = false
            pthread_mutex_unlock(&mutex)
        }
    }

    /// True while the thread runs a job (at shutdown: one that has not returned in time).
    public var isBusy: Bool {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return running || !jobs.isEmpty
    }

    /// Queues a job. Jobs submitted after `shutdown` still run before the thread ends.
    public func submit(_ job: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(&mutex)
        jobs.append(job)
        pthread_cond_signal(&cond)
        pthread_mutex_unlock(&mutex)
    }

    /// Runs `body` on this thread and returns its result to the awaiting task.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
            submit { c.resume(with: Result { try body() }) }
        }
    }

    /// Runs a non-throwing `body` on this thread.
    public func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
            submit { c.resume(returning: body()) }
        }
    }

    /// Runs `body` on this thread and blocks the caller until it is done.
    @available(*, noasync, message: "use run(_:) from async code")
    public func runBlocking<T>(_ body: () throws -> T) rethrows -> T {
        if isCurrent { return try body() }
        return try withoutActuallyEscaping(body) { body in
            let box = BlockingBox<T>()
            let unsafeBody = UnsafeTransfer(body)
            submit {
                box.set(Result { try unsafeBody.value() })
            }
            return try box.wait().get()
        }
    }

    /// Lets queued jobs finish, then ends the thread and waits for it.
    public func shutdown() {
        pthread_mutex_lock(&mutex)
        stopping = true
        pthread_cond_signal(&cond)
        let t = thread
        thread = nil
        pthread_mutex_unlock(&mutex)
        if let t, !isCurrent { pthread_join(t, nil) }
    }
}

/// Carries a non-Sendable value across a thread hop that the caller serialises itself.
struct UnsafeTransfer<T>: @unchecked Sendable {
    // Safe because the only users hand the value to exactly one thread and wait for it.
    let value: T
    init(_ value: T) { self.value = value }
}

/// A one-shot result slot a thread can block on.
public final class BlockingBox<T>: @unchecked Sendable {
    // Safe because `result` is only touched with `mutex` held.
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var result: Result<T, any Error>?

    public init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
    }

    deinit {
        pthread_cond_destroy(&cond)
        pthread_mutex_destroy(&mutex)
    }

    public func set(_ r: Result<T, any Error>) {
        pthread_mutex_lock(&mutex)
        result = r
        pthread_cond_signal(&cond)
        pthread_mutex_unlock(&mutex)
    }

    public func wait() -> Result<T, any Error> {
        pthread_mutex_lock(&mutex)
        while result == nil { pthread_cond_wait(&cond, &mutex) }
        let r = result!
        pthread_mutex_unlock(&mutex)
        return r
    }
}

/// A value that lives on one worker thread and is only touched by jobs on it, such as a
/// `lua_State`. Checks the thread on every access.
public final class ThreadConfined<T>: @unchecked Sendable {
    // Safe because every access goes through `withValue`, which checks the owning thread.
    private var value: T
    public let worker: WorkerThread

    public init(_ value: T, on worker: WorkerThread) {
        self.value = value
        self.worker = worker
    }

    public func withValue<R>(_ body: (inout T) throws -> R) rethrows -> R {
        precondition(worker.isCurrent, "a thread-confined value was used off its worker thread")
        return try body(&value)
    }
}
