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
/// state. Adapters call `perform`; plugins use `SharedStoreProtocol`'s methods.
public protocol RemoteSharedStore: SharedStoreProtocol {
    /// The run's host budget, which reads are charged to (the pipeline sets it).
    var budget: HostBudget? { get nonmutating set }
    /// Performs one call. Past `deadline` it fails at once with a `.timeout` error (a command
    /// already sent may still take effect); a cancelled task's call fails at once too.
    func perform(_ call: SharedCall, until deadline: ContinuousClock.Instant?) async throws -> SharedAnswer
    /// Gives back what an answer held of the host budget (its `charged`).
    func release(_ charged: Int)
}

/// One call of `ctx.shared`, as an adapter hands it to a `RemoteSharedStore`.
public enum SharedCall: Sendable {
    case get(String)
    /// nil removes the key.
    case set(String, Value?)
    case incr(String, by: Int64)
    case delete(String)
    case keys
}

/// What a `SharedCall` gave; `charged` is what it holds of the host budget until released.
public enum SharedAnswer: Sendable {
    case none
    case value(Tape, charged: Int)
    case integer(Int64)
    case keys([String], charged: Int)
}
