import Synchronization

/// The run-wide key-value store of SPEC §5 (`ctx.shared`), safe from every plugin and thread.
public final class SharedStore: Sendable {
    private let storage = Mutex<[String: Value]>([:])

    public init() {}

    public func get(_ key: String) -> Value? { storage.withLock { $0[key] } }

    public func set(_ key: String, _ value: Value?) { storage.withLock { $0[key] = value } }

    public func delete(_ key: String) { storage.withLock { $0[key] = nil } }

    /// Adds `delta` atomically; a missing key counts as 0. Fails when the stored value is not
    /// an integer or the sum overflows.
    public func incr(_ key: String, by delta: Int64) throws(PipelineError) -> Int64 {
        try storage.withLock { (d) throws(PipelineError) -> Int64 in
            let current: Int64
            switch d[key] {
            case nil, .null?: current = 0
            case .int(let v)?: current = v
            case let other?:
                throw PipelineError(.plugin, "incr: the value of '\(key)' is a \(other.typeName), not an integer")
            }
            let (sum, overflow) = current.addingReportingOverflow(delta)
            if overflow { throw PipelineError(.plugin, "incr: '\(key)' would overflow a 64-bit integer") }
            d[key] = .int(sum)
            return sum
        }
    }

    /// The keys, sorted (so a plugin that lists them behaves the same in every run).
    public func keys() -> [String] { storage.withLock { $0.keys.sorted() } }
}
