#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value behind a pthread mutex.
///
/// Used instead of `Synchronization.Mutex` because ThreadSanitizer on Linux does not see
/// Mutex's futex-based locking: a two-thread program that only touches a `Mutex`'s value
/// under `withLock` gets "data race" reports (checked with Swift 6.3.1), which would hide
/// real races in `scripts/sanitize.sh` runs. TSan understands pthread mutexes.
public final class Locked<Value>: @unchecked Sendable {
    // Safe because `value` is only touched with `mutex` held.
    private var mutex = pthread_mutex_t()
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        pthread_mutex_init(&mutex, nil)
    }

    deinit { pthread_mutex_destroy(&mutex) }

    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body(&value)
    }
}

/// CLOCK_MONOTONIC in milliseconds (for loops that poll).
public func monotonicMilliseconds() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int(ts.tv_sec) * 1000 + Int(ts.tv_nsec) / 1_000_000
}
