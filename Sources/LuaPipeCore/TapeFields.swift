/// A record's top-level fields as pieces of its tape: the built-ins set, rename and remove
/// fields here and write a new tape, or decode the one field they read, without building a
/// `Record` (which costs a String and a Value per field, both ways).
public struct TapeFields {
    enum Bytes {
        case original(Range<Int>)  // in `tape`
        case new([UInt8])
    }

    private let tape: [UInt8]
    private var entries: [(key: Bytes, value: Bytes)] = []

    /// Nil when the tape's top level is not an object.
    public init?(_ tape: Tape) {
        let b = tape.bytes
        self.tape = b
        guard b.first == Tape.Tag.object.rawValue, b.count >= 9 else { return nil }
        let count = Self.u32(b, 1)
        entries.reserveCapacity(count + 2)
        var i = 9
        for _ in 0..<count {
            let n = Self.u32(b, i)
            let key = (i + 4)..<(i + 4 + n)
            let end = Self.skip(b, key.upperBound)
            entries.append((.original(key), .original(key.upperBound..<end)))
            i = end
        }
    }

    /// Sets `key` to the encoded `value` (see `Tape.encode`): in place when the record has
    /// it, else at the end.
    public mutating func set(_ key: [UInt8], encoded value: [UInt8]) {
        if let k = index(key) { entries[k].value = .new(value) } else { entries.append((.new(key), .new(value))) }
    }

    /// Renames `old` to `new` in its place; a field already called `new` goes. As `Record.rename`.
    public mutating func rename(_ old: [UInt8], to new: [UInt8]) {
        guard old != new, let k = index(old) else { return }
        entries[k].key = .new(new)
        if let other = entries.indices.first(where: { $0 != k && equal(entries[$0].key, new) }) {
            entries.remove(at: other)
        }
    }

    /// The value of field `key`, decoded (only that field is), or nil when there is none.
    public func value(_ key: [UInt8]) -> Value? {
        guard let k = index(key) else { return nil }
        switch entries[k].value {
        case .original(let r): return Tape(bytes: Array(tape[r])).value()
        case .new(let v): return Tape(bytes: v).value()
        }
    }

    /// The value of field `key` in tape form (as `Tape.encode` writes it), not decoded.
    public func encoded(_ key: [UInt8]) -> ArraySlice<UInt8>? {
        guard let k = index(key) else { return nil }
        switch entries[k].value {
        case .original(let r): return tape[r]
        case .new(let v): return v[...]
        }
    }

    public mutating func remove(_ key: [UInt8]) {
        if let k = index(key) { entries.remove(at: k) }
    }

    /// The edited record.
    public var result: Tape {
        var out: [UInt8] = []
        out.reserveCapacity(tape.count + 64)
        out.append(Tape.Tag.object.rawValue)
        Tape.appendU32(UInt32(entries.count), to: &out)
        Tape.appendU32(0, to: &out)
        for (key, value) in entries {
            switch key {
            case .original(let r):
                Tape.appendU32(UInt32(r.count), to: &out)
                out.append(contentsOf: tape[r])
            case .new(let k):
                Tape.appendU32(UInt32(k.count), to: &out)
                out.append(contentsOf: k)
            }
            switch value {
            case .original(let r): out.append(contentsOf: tape[r])
            case .new(let v): out.append(contentsOf: v)
            }
        }
        Tape.patchU32(UInt32(out.count - 9), at: 5, in: &out)
        return Tape(bytes: out)
    }

    private func equal(_ key: Bytes, _ other: [UInt8]) -> Bool {
        switch key {
        case .original(let r): r.count == other.count && tape[r].elementsEqual(other)
        case .new(let k): k == other
        }
    }

    private func index(_ key: [UInt8]) -> Int? { entries.indices.first { equal(entries[$0].key, key) } }

    static func u32(_ b: [UInt8], _ i: Int) -> Int {
        Int(b[i]) | Int(b[i + 1]) << 8 | Int(b[i + 2]) << 16 | Int(b[i + 3]) << 24
    }

    /// The offset just past the value at `i`.
    static func skip(_ b: [UInt8], _ i: Int) -> Int {
        switch Tape.Tag(rawValue: b[i]) {
        case .int?, .double?: i + 9
        case .string?: i + 5 + u32(b, i + 1)
        case .array?, .object?: i + 9 + u32(b, i + 5)
        default: i + 1
        }
    }
}

extension Tape {
    /// `value` in tape form, without a Tape around it: what `TapeFields.set` takes.
    public static func encode(_ value: Value) -> [UInt8] { TapeEncoder.encode(value) }
}
