
/// The run-wide key-value store of SPEC §5 (`ctx.shared`), safe from every plugin and thread.
public final class SharedStore: Sendable {
    private struct Storage {
        var values: [String: Value] = [:]
        var sizes: [String: Int] = [:]
        var bytes = 0
    }

    private let storage = Locked(Storage())
    /// The most the store may hold (keys plus values in their compact form): it lives outside
    /// every plugin's memory limit, so it has one of its own.
    public let maxBytes: Int

    public init(maxBytes: Int = 256 << 20) { self.maxBytes = maxBytes }

    public func get(_ key: String) -> Value? { storage.withLock { $0.values[key] } }

    /// Sets (or with nil removes) a value; fails when the store would pass `maxBytes`.
    public func set(_ key: String, _ value: Value?) throws(PipelineError) {
        let size = value.map { key.utf8.count + Tape($0).bytes.count } ?? 0
        try storage.withLock { (s) throws(PipelineError) in
            let old = s.sizes[key] ?? 0
            if s.bytes - old + size > maxBytes {
                throw PipelineError(.plugin, "ctx.shared is full: setting '\(key)' would pass its limit of \(maxBytes >> 20) MiB")
            }
            s.bytes += size - old
            s.values[key] = value
            s.sizes[key] = value == nil ? nil : size
        }
    }

    public func delete(_ key: String) { try? set(key, nil) }

    /// Adds `delta` atomically; a missing key counts as 0. Fails when the stored value is not
    /// an integer or the sum overflows.
    public func incr(_ key: String, by delta: Int64) throws(PipelineError) -> Int64 {
        try storage.withLock { (s) throws(PipelineError) -> Int64 in
            let current: Int64
            switch s.values[key] {
            case nil, .null?: current = 0
            case .int(let v)?: current = v
            case let other?:
                throw PipelineError(.plugin, "incr: the value of '\(key)' is a \(other.typeName), not an integer")
            }
            let (sum, overflow) = current.addingReportingOverflow(delta)
            if overflow { throw PipelineError(.plugin, "incr: '\(key)' would overflow a 64-bit integer") }
            if s.values[key] == nil {
                let size = key.utf8.count + 9
                if s.bytes + size > maxBytes { throw PipelineError(.plugin, "ctx.shared is full: cannot add '\(key)'") }
                s.bytes += size
                s.sizes[key] = size
            }
            s.values[key] = .int(sum)
            return sum
        }
    }

    /// The keys, sorted (so a plugin that lists them behaves the same in every run).
    public func keys() -> [String] { storage.withLock { $0.values.keys.sorted() } }
}
