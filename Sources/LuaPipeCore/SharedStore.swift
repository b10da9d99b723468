/// The run-wide key-value store of docs/reference.md (`ctx.shared`), safe from every plugin and thread.
///
/// Values are kept as tapes (the bytes a Lua plugin hands over, see `Tape`), not as `Value`
/// trees, and the limit counts what the store really holds: each entry's key and tape with
/// the heap blocks they take, and the dictionary's slots (see `cost`). Before, the count was
/// key + tape bytes only, and 8M small keys counted as ~128 MB took 1.4 GB.
///
/// Its methods are synchronous (`context.shared`); through `SharedStoreProtocol`
/// (`context.store`) the same store is awaited like one in Redis.
public final class SharedStore: SharedStoreProtocol {
    private struct Storage {
        var values: [String: [UInt8]] = [:]
        var entryBytes = 0  // keys and tapes, as `cost` counts them
        var bytes: Int { entryBytes + SharedStore.slotBytes(values.capacity) }
    }

    private let storage = Locked(Storage())
    /// The most the store may hold (as `cost` counts it): it lives outside every plugin's
    /// memory limit, so it has one of its own.
    public let maxBytes: Int

    /// Set when the run's store lives elsewhere (Redis): then this one holds nothing, `set`
    /// and `incr` fail with this message, and `get` and `keys` find nothing.
    public let refusal: String?

    public init(maxBytes: Int = 256 << 20) {
        self.maxBytes = maxBytes
        refusal = nil
    }

    /// A store that stands in for `context.shared` when the run's store is `elsewhere`: a
    /// Swift plugin that uses the synchronous API is told to await `context.store` instead.
    public init(elsewhere: String) {
        maxBytes = 0
        refusal = "ctx.shared is in \(elsewhere) for this run: a Swift plugin reaches it with `try await context.store...`, not through the synchronous `context.shared`"
    }

    /// The heap an entry takes beside its dictionary slot: a key of more than 15 UTF-8 bytes is
    /// a heap object (32 bytes of header, the bytes, a NUL), a tape an array (32 bytes of
    /// header); malloc adds 8 bytes to each block and rounds it up to 16.
    ///
    /// Measured from outside (VmHWM of `luapipe run`, release build, whose plugin sets keys
    /// "k1".."kN" to small integers (Tests/LuaRuntimeTests/Fixtures/hostmem/shared_fill.lua),
    /// minus the 26 MiB of the same run setting none; Swift 6.3.1, glibc, Linux x86-64):
    /// - 1M keys: counted 109 MiB, RSS grew by 120 MiB (1.10x; Lua's own garbage included).
    ///   With the old count (key + tape bytes, ~16 MB), RSS grew by 149 MiB: 9.5x.
    /// - 8M keys tried: the store filled at 2.61M keys, counted 256 MiB, RSS grew by 256 MiB
    ///   (1.00x). The old count let all 8M in, counted ~138 MB, and took 1.22 GiB (9x).
    static func cost(key: Int, tape: Int) -> Int {
        let keyHeap = key > 15 ? (32 + key + 1 + 8 + 15) & ~15 : 0
        return keyHeap + (32 + tape + 8 + 15) & ~15
    }

    /// The dictionary's slots for `capacity` entries: buckets (a power of two, at most 3/4
    /// full) of a String and an array reference each, and a bitmap.
    static func slotBytes(_ capacity: Int) -> Int {
        if capacity == 0 { return 0 }
        var buckets = 1
        while buckets * 3 < capacity * 4 { buckets *= 2 }
        return buckets * (MemoryLayout<String>.stride + MemoryLayout<[UInt8]>.stride) + buckets / 8
    }

    /// The bytes the store holds, as its limit counts them.
    public var bytes: Int { storage.withLock { $0.bytes } }

    public func get(_ key: String) -> Value? { tape(key).map { Tape(bytes: $0).value() } }

    /// The tape of the value under `key`.
    public func tape(_ key: String) -> [UInt8]? { storage.withLock { $0.values[key] } }

    /// Sets (or with nil removes) a value; fails when the store would pass `maxBytes`.
    public func set(_ key: String, _ value: Value?) throws(PipelineError) {
        try set(key, tape: value.map { Tape($0).bytes })
    }

    /// Sets (or with nil removes) the value a tape holds; fails when the store would pass
    /// `maxBytes`.
    public func set(_ key: String, tape: [UInt8]?) throws(PipelineError) {
        if let refusal { throw PipelineError(.plugin, refusal) }
        let size = tape.map { Self.cost(key: key.utf8.count, tape: $0.count) } ?? 0
        try storage.withLock { (s) throws(PipelineError) in
            let old = s.values[key].map { Self.cost(key: key.utf8.count, tape: $0.count) }
            if size > (old ?? 0) {
                let capacity = old == nil && s.values.count == s.values.capacity
                    ? max(2 * s.values.capacity, 1) : s.values.capacity
                if s.entryBytes - (old ?? 0) + size + Self.slotBytes(capacity) > maxBytes {
                    throw PipelineError(.plugin, "ctx.shared is full: setting '\(key.prefix(200))' would pass its limit of \(maxBytes >> 20) MiB")
                }
            }
            s.entryBytes += size - (old ?? 0)
            s.values[key] = tape
        }
    }

    public func delete(_ key: String) { try? set(key, tape: nil) }

    /// Adds `delta` atomically; a missing key counts as 0. Fails when the stored value is not
    /// an integer or the sum overflows.
    public func incr(_ key: String, by delta: Int64) throws(PipelineError) -> Int64 {
        if let refusal { throw PipelineError(.plugin, refusal) }
        return try storage.withLock { (s) throws(PipelineError) -> Int64 in
            let stored = s.values[key]
            var current: Int64 = 0
            if let t = stored {
                switch Tape.Tag(rawValue: t[0]) {
                case .null?: current = 0
                case .int?: current = t.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(fromByteOffset: 1, as: Int64.self)) }
                default:
                    throw PipelineError(.plugin, "incr: the value of '\(key)' is a \(Tape(bytes: t).value().typeName), not an integer")
                }
            }
            let (sum, overflow) = current.addingReportingOverflow(delta)
            if overflow { throw PipelineError(.plugin, "incr: '\(key)' would overflow a 64-bit integer") }
            let size = Self.cost(key: key.utf8.count, tape: 9)
            let old = stored.map { Self.cost(key: key.utf8.count, tape: $0.count) }
            if old == nil {
                let capacity = s.values.count == s.values.capacity ? max(2 * s.values.capacity, 1) : s.values.capacity
                if s.entryBytes + size + Self.slotBytes(capacity) > maxBytes {
                    throw PipelineError(.plugin, "ctx.shared is full: cannot add '\(key.prefix(200))'")
                }
            }
            s.entryBytes += size - (old ?? 0)
            s.values[key] = Tape(.int(sum)).bytes
            return sum
        }
    }

    /// The keys, sorted (so a plugin that lists them behaves the same in every run).
    public func keys() -> [String] { storage.withLock { $0.values.keys.sorted() } }
}
