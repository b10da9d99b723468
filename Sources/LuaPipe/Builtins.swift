import DequeModule
import LuaPipeCore
#if canImport(Glibc)
import Glibc
#endif

/// The built-in native plugins of docs/reference.md.
enum Builtins {
    static func register(in registry: PluginRegistry) {
        // The blocking kind runs on the worker threads, so a built-in between two Lua plugins
        // joins their fused stage (a record crosses no thread between them). Only `throttle`,
        // which awaits, is async.
        func sync(_ name: String, _ description: String, parallel: Bool,
                  _ make: @escaping @Sendable (PluginContext, PluginRegistry.Environment) throws -> any SyncPlugin) {
            registry.add(.init(name: name, version: "1.0.0", description: description, kind: "swift-sync", parallel: parallel,
                               builtin: true, make: { .sync(try make($0, $1)) }))
        }
        sync("set", "sets (overwrites) fields", parallel: true) { ctx, _ in try SetPlugin(ctx.configRecord) }
        sync("rename", "renames fields, keeping their place in the key order", parallel: true) { ctx, _ in try RenamePlugin(ctx.configRecord) }
        sync("remove", "removes fields", parallel: true) { ctx, _ in try RemovePlugin(ctx.configRecord) }
        sync("sample", "keeps records 1, N+1, 2N+1, ... of those it sees", parallel: false) { ctx, _ in try SamplePlugin(ctx.configRecord) }
        sync("dedupe", "drops a record whose key was seen among the last N keys", parallel: false) { ctx, _ in try DedupePlugin(ctx.configRecord) }
        sync("lookup", "loads a JSON Lines table in setup; copies fields from the matching row", parallel: true) { ctx, env in
            try LookupPlugin(ctx.configRecord, env)
        }
        registry.update("lookup") { $0.reads = { config, base in LookupPlugin.file(config, base).map { [$0] } ?? [] } }
        registry.add(.init(name: "throttle", version: "1.0.0", description: "delays records to at most N per second, by awaiting",
                           kind: "swift", parallel: false, builtin: true, make: { ctx, _ in .async(try ThrottlePlugin(ctx.configRecord)) }))
    }
}

/// A config error: names the plugin's config key and says what is expected.
public func configError(_ plugin: String, _ key: String, _ expected: String) -> PipelineError {
    PipelineError(.manifest, "config.\(key): \(expected) (plugin '\(plugin)')")
}

final class SetPlugin: TapeSyncPlugin {
    let fields: Record
    let encoded: [(key: [UInt8], value: [UInt8])]
    init(_ config: Record) throws {
        guard case .object(let f)? = config["fields"] else { throw configError("set", "fields", "a map of field: value expected") }
        fields = f
        encoded = f.fields.map { (Array($0.key.utf8), Tape.encode($0.value)) }
    }
    func process(_ record: Record, _ context: PluginContext) throws -> Disposition {
        var r = record
        for (k, v) in fields.fields { r[k] = v }
        return .replace(r)
    }
    func process(tape: Tape, _ context: PluginContext) throws -> Tape? {
        guard var f = TapeFields(tape) else { return tape }
        for (k, v) in encoded { f.set(k, encoded: v) }
        return f.result
    }
}

final class RenamePlugin: TapeSyncPlugin {
    let pairs: [(String, String)]
    let bytes: [(old: [UInt8], new: [UInt8])]
    init(_ config: Record) throws {
        guard case .object(let f)? = config["fields"] else { throw configError("rename", "fields", "a map of old: new names expected") }
        pairs = try f.fields.map { k, v in
            guard case .string(let n) = v else { throw configError("rename", "fields.\(k)", "the new name must be a string") }
            return (k, n)
        }
        bytes = pairs.map { (Array($0.0.utf8), Array($0.1.utf8)) }
    }
    func process(_ record: Record, _ context: PluginContext) throws -> Disposition {
        var r = record
        for (old, new) in pairs { r.rename(old, to: new) }
        return .replace(r)
    }
    func process(tape: Tape, _ context: PluginContext) throws -> Tape? {
        guard var f = TapeFields(tape) else { return tape }
        for (old, new) in bytes { f.rename(old, to: new) }
        return f.result
    }
}

final class RemovePlugin: TapeSyncPlugin {
    let names: [String]
    let bytes: [[UInt8]]
    init(_ config: Record) throws {
        guard case .array(let a)? = config["fields"], let names = Optional(a.compactMap(\.stringValue)), names.count == a.count else {
            throw configError("remove", "fields", "a list of field names expected")
        }
        self.names = names
        bytes = names.map { Array($0.utf8) }
    }
    func process(_ record: Record, _ context: PluginContext) throws -> Disposition {
        var r = record
        for n in names { r[n] = nil }
        return .replace(r)
    }
    func process(tape: Tape, _ context: PluginContext) throws -> Tape? {
        guard var f = TapeFields(tape) else { return tape }
        for n in bytes { f.remove(n) }
        return f.result
    }
}

final class SamplePlugin: TapeSyncPlugin {
    let every: Int64
    var seen: Int64 = 0
    init(_ config: Record) throws {
        guard let n = config["every"]?.intValue, n >= 1, n <= Int32.max else {
            throw configError("sample", "every", "a whole number from 1 to 2,147,483,647 expected")
        }
        every = n
    }
    private func keep() -> Bool {
        defer { seen += 1 }
        return seen % every == 0
    }
    func process(_ record: Record, _ context: PluginContext) throws -> Disposition { keep() ? .pass : .drop }
    func process(tape: Tape, _ context: PluginContext) throws -> Tape? { keep() ? tape : nil }
}

final class DedupePlugin: TapeSyncPlugin {
    let key: [String]
    let keyBytes: [[UInt8]]
    let capacity: Int
    /// A key as remembered: two SipHashes with seeds of this run, of the key's fields in tape
    /// form, each after its length. Secret seeds: records cannot be made to collide; two
    /// distinct keys among 10 million agree with probability about 10^-25. Sixteen bytes and
    /// no allocation per key: keys kept whole took 130 bytes each and up to 350 (a million
    /// and a half keys: 221 MiB, fifth blind round), 5 MB keys 5 MB each (fourth).
    struct Digest: Hashable { var a: UInt64, b: UInt64 }
    /// The last `capacity` keys, oldest first, and the same as a set.
    var order = Deque<Digest>()
    var seen = Set<Digest>()
    private let seeds = (UInt64.random(in: .min ... .max), UInt64.random(in: .min ... .max))
    init(_ config: Record) throws {
        guard case .array(let a)? = config["key"], !a.isEmpty, a.allSatisfy({ $0.stringValue != nil }) else {
            throw configError("dedupe", "key", "a non-empty list of field names expected")
        }
        key = a.compactMap(\.stringValue)
        keyBytes = key.map { Array($0.utf8) }
        let c = config["capacity"].map { $0.intValue ?? -1 } ?? 10_000  // a float or a string is no capacity
        guard c >= 1, c <= 10_000_000 else { throw configError("dedupe", "capacity", "a whole number from 1 to 10,000,000 expected") }
        capacity = Int(c)
    }

    /// A missing key field counts as null, as in the record.
    static let null = Tape.encode(.null)

    private func remembered(_ fields: [ArraySlice<UInt8>]) -> Digest {
        var h1 = Hasher(), h2 = Hasher()
        h1.combine(seeds.0)
        h2.combine(seeds.1)
        for f in fields {
            h1.combine(f.count)
            h2.combine(f.count)
            f.withUnsafeBytes { h1.combine(bytes: $0); h2.combine(bytes: $0) }
        }
        return Digest(a: UInt64(bitPattern: Int64(h1.finalize())), b: UInt64(bitPattern: Int64(h2.finalize())))
    }

    /// True when `k` is not among the last `capacity` keys; remembers it.
    private func admit(_ k: Digest) -> Bool {
        guard seen.insert(k).inserted else { return false }
        order.append(k)
        if order.count > capacity, let old = order.popFirst() {
            seen.remove(old)
        }
        return true
    }
    func process(_ record: Record, _ context: PluginContext) throws -> Disposition {
        admit(remembered(key.map { Tape.encode(record[$0] ?? .null)[...] })) ? .pass : .drop
    }
    func process(tape: Tape, _ context: PluginContext) throws -> Tape? {
        guard let f = TapeFields(tape) else { return tape }
        return admit(remembered(keyBytes.map { f.encoded($0) ?? Self.null[...] })) ? tape : nil
    }
}

final class ThrottlePlugin: Plugin {
    let interval: Duration
    var next: ContinuousClock.Instant?
    var enforcesTimeout: Bool { false }
    init(_ config: Record) throws {
        guard let n = config["per_second"]?.doubleValue, n >= 0.001, n <= 1e9 else {
            throw configError("throttle", "per_second", "a number from 0.001 to 1,000,000,000 expected")
        }
        interval = .nanoseconds(Int64(1e9 / n))
    }
    func process(_ record: Record, _ context: PluginContext) async throws -> Disposition {
        let now = ContinuousClock.now
        if let next, next > now { try await Task.sleep(until: next, clock: .continuous) }
        next = max(next ?? now, now) + interval
        return .pass
    }
}

final class LookupPlugin: TapeSyncPlugin {
    let path: String
    let key: String
    let keyBytes: [UInt8]
    let fields: [String]
    let fieldBytes: [[UInt8]]
    /// Per key, where its row starts in `arena`. A row keeps only the `fields` it has, each
    /// as its index in `fields` (2 bytes), its length (4 bytes) and its value in tape form:
    /// one array for the whole table, not a few allocations per row.
    var rows: [Value: Int] = [:]
    var arena: [UInt8] = []
    /// The most rows a table may have (docs/reference.md, "Numbers").
    static let maxRows = 1_000_000

    init(_ config: Record, _ env: PluginRegistry.Environment) throws {
        guard let file = config["file"]?.stringValue else { throw configError("lookup", "file", "a path to a JSON Lines file expected") }
        guard let key = config["key"]?.stringValue else { throw configError("lookup", "key", "a field name expected") }
        guard case .array(let a)? = config["fields"], a.allSatisfy({ $0.stringValue != nil }) else {
            throw configError("lookup", "fields", "a list of field names expected")
        }
        path = Self.file(config, env.baseDirectory)!
        guard FileIO.fileExists(path) else {
            throw configError("lookup", "file", "a JSON Lines file expected; \(path) is not a file (check the path, relative to the manifest)")
        }
        self.key = key
        keyBytes = Array(key.utf8)
        fields = a.compactMap(\.stringValue)
        fieldBytes = fields.map { Array($0.utf8) }
    }

    /// The table's path, relative to the manifest's folder.
    static func file(_ config: Record, _ base: String) -> String? {
        guard let file = config["file"]?.stringValue else { return nil }
        return file.hasPrefix("/") ? file : base + "/" + file
    }

    func setup(_ context: PluginContext) throws {
        // A sync plugin: this runs on its worker thread, never on a cooperative one. A regular
        // file only (a FIFO would block the thread for good), at most 64 MiB and 1,000,000
        // rows (SECURITY.md, "Host memory"), loaded within the setup's timeout_ms and given up
        // at once when the run stops.
        let bytes: [UInt8]
        do { bytes = try FileIO.readRegular(path, limit: 64 << 20, what: "lookup table") } catch {
            throw PipelineError(.setup, "lookup: \(error.message)", plugin: context.info.id)
        }
        // Sized once: a dictionary or an array that doubles as it grows holds both sizes for a
        // moment, and a million rows is where that shows.
        // Newlines found with memchr: a 64 MiB table is scanned in milliseconds, also in a
        // debug build, before the first deadline check.
        let ends: [Int] = bytes.withUnsafeBufferPointer { b in
            var at: [Int] = []
            guard let base = b.baseAddress else { return at }
            var from = 0
            while from < b.count, let nl = memchr(base + from, 10, b.count - from) {
                let i = base.distance(to: nl.assumingMemoryBound(to: UInt8.self))
                at.append(i)
                from = i + 1
            }
            return at
        }
        rows.reserveCapacity(min(ends.count + 1, Self.maxRows))
        var lineNumber = 0
        var start = 0
        while start < bytes.count {
            let end = lineNumber < ends.count ? ends[lineNumber] : bytes.count
            var line = bytes[start..<end]
            start = end + 1
            lineNumber += 1
            if lineNumber & 4095 == 0, context.pastDeadline {
                throw PipelineError(.timeout, "lookup: loading \(path) stopped at line \(lineNumber): the setup ran past its "
                                    + "time limit (timeout_ms), or the run is stopping", plugin: context.info.id)
            }
            if line.last == 13 { line.removeLast() }
            if line.allSatisfy({ $0 == 32 || $0 == 9 }) { continue }
            // A long row is parsed asking the deadline as it goes (one of 63 MiB took 3 s).
            let parsed: Tape?
            do {
                parsed = try line.withUnsafeBufferPointer { p throws(JSONError) in
                    p.count < 1 << 20 ? try JSONReader.parseRecord(p)
                                      : try JSONReader.parseRecord(p, stoppingWhen: { context.pastDeadline })
                }
            } catch {
                throw PipelineError(.setup, "lookup: \(path):\(lineNumber): \(error)", plugin: context.info.id)
            }
            guard let tape = parsed else {
                throw PipelineError(.timeout, "lookup: loading \(path) stopped in line \(lineNumber) (\(line.count) bytes): the "
                                    + "setup ran past its time limit (timeout_ms), or the run is stopping", plugin: context.info.id)
            }
            guard let row = TapeFields(tape) else {
                throw PipelineError(.setup, "lookup: \(path):\(lineNumber): not a JSON object", plugin: context.info.id)
            }
            guard let k = row.value(keyBytes) else { continue }
            if rows.count >= Self.maxRows, rows[k] == nil {
                throw PipelineError(.setup, "lookup: \(path) has more than \(Self.maxRows) rows (line \(lineNumber)); "
                                    + "split the table or keep only the rows the input needs", plugin: context.info.id)
            }
            rows[k] = arena.count
            // Copied in tape form, never decoded: a row of a million small values would take
            // gigabytes as Values.
            let present = fieldBytes.indices.compactMap { i in row.encoded(fieldBytes[i]).map { (i, Array($0)) } }
            Self.put(UInt32(present.count), 2, &arena)
            for (i, value) in present {
                Self.put(UInt32(i), 2, &arena)
                Self.put(UInt32(value.count), 4, &arena)
                arena.append(contentsOf: value)
            }
        }
    }

    private static func put(_ v: UInt32, _ width: Int, _ out: inout [UInt8]) {
        for b in 0..<width { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(b)))) }
    }

    private func get(_ at: Int, _ width: Int) -> Int {
        (0..<width).reduce(0) { $0 | Int(arena[at + $1]) << (8 * $1) }
    }

    /// The row of `key`'s fields: (index in `fields`, value in tape form).
    func row(_ key: Value) -> [(field: Int, value: ArraySlice<UInt8>)]? {
        guard var at = rows[key] else { return nil }
        let count = get(at, 2)
        at += 2
        return (0..<count).map { _ in
            let (i, n) = (get(at, 2), get(at + 2, 4))
            defer { at += 6 + n }
            return (i, arena[(at + 6)..<(at + 6 + n)])
        }
    }

    func process(tape: Tape, _ context: PluginContext) throws -> Tape? {
        guard var f = TapeFields(tape), let k = f.value(keyBytes), let row = row(k) else { return tape }
        for (i, value) in row { f.set(fieldBytes[i], encoded: Array(value)) }
        return f.result
    }

    func process(_ record: Record, _ context: PluginContext) throws -> Disposition {
        guard let k = record[key], let row = row(k) else { return .pass }
        var r = record
        for (i, value) in row { r[fields[i]] = Tape(bytes: Array(value)).value() }
        return .replace(r)
    }
}
