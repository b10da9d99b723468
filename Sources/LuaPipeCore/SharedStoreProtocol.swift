/// The run's shared store (`ctx.shared`) wherever it lives: in this process (`SharedStore`,
/// the default) or in Redis (`shared: redis://HOST:PORT/PREFIX` in the manifest), where every
/// luapipe process sharing the prefix sees the same keys. A Swift plugin reaches it through
/// `context.store` and awaits each call:
///
/// ```swift
/// let seen = try await context.store.incr("seen", by: 1)
/// ```
///
/// Values are record values (JSON). `incr` is atomic across everything that shares the store;
/// a missing key counts as 0, and a value that is not an integer is an error. `keys` is sorted.
/// - Important: with a store in Redis each call is a network round trip, run on dedicated
///   threads; it fails (throws) when Redis cannot be reached, it never waits forever.
public protocol SharedStoreProtocol: Sendable {
    func get(_ key: String) async throws -> Value?
    /// Sets a value; nil removes the key.
    func set(_ key: String, _ value: Value?) async throws
    /// Adds `delta` atomically and returns the new value.
    func incr(_ key: String, by delta: Int64) async throws -> Int64
    func delete(_ key: String) async throws
    func keys() async throws -> [String]
}

/// A shared store outside the process (Redis): each call is a round trip, so a Lua plugin's
/// `ctx.shared` calls wait like `luapipe.sleep` (docs/reference.md, "Waiting on services"),
/// and what a call reads is charged to the run's host budget until it is in the plugin's
/// state. Adapters use these forms; plugins use `SharedStoreProtocol`'s.
public protocol RemoteSharedStore: SharedStoreProtocol {
    /// The run's host budget, which reads are charged to (the pipeline sets it).
    var budget: HostBudget? { get nonmutating set }
    /// The value under `key` as a tape, and the bytes of the host budget it holds until
    /// `release` gives them back (once the value is copied where it goes).
    func getTape(_ key: String) async throws -> (tape: Tape, charged: Int)?
    /// The keys, sorted, and the bytes of the host budget they hold until `release`.
    func chargedKeys() async throws -> (keys: [String], charged: Int)
    func release(_ charged: Int)
}
