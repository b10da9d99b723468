/// Encodes a `Record` or `Value` as a tape in one pass into a buffer of the exact size,
/// measured first: no growth, and fixed-width fields stored directly rather than appended
/// byte by byte. A sync Swift plugin's result goes this way into the next Lua plugin.
enum TapeEncoder {
    static func size(of record: Record) -> Int {
        var n = 9
        for (k, v) in record.fields { n += 4 + k.utf8.count + size(of: v) }
        return n
    }

    static func size(of value: Value) -> Int {
        switch value {
        case .null, .bool: 1
        case .int, .double: 9
        case .string(let s): 5 + s.utf8.count
        case .array(let a): a.reduce(9) { $0 + size(of: $1) }
        case .object(let r): size(of: r)
        }
    }

    static func encode(_ record: Record) -> [UInt8] { encode(.object(record)) }

    static func encode(_ value: Value) -> [UInt8] {
        let n = size(of: value)
        return [UInt8](unsafeUninitializedCapacity: n) { buffer, count in
            var w = Writer(base: UnsafeMutableRawPointer(buffer.baseAddress!), capacity: n)
            w.put(value)
            precondition(w.offset == n, "tape size mismatch (a bug)")
            count = n
        }
    }

    private struct Writer {
        let base: UnsafeMutableRawPointer
        let capacity: Int
        var offset = 0

        // Every write checks its bounds: a wrong size traps instead of writing past the end.
        mutating func tag(_ t: Tape.Tag) {
            precondition(offset < capacity)
            base.storeBytes(of: t.rawValue, toByteOffset: offset, as: UInt8.self)
            offset += 1
        }

        mutating func u32(_ v: Int) {
            precondition(offset + 4 <= capacity)
            base.storeBytes(of: UInt32(v).littleEndian, toByteOffset: offset, as: UInt32.self)
            offset += 4
        }

        mutating func u64(_ v: UInt64) {
            precondition(offset + 8 <= capacity)
            base.storeBytes(of: v.littleEndian, toByteOffset: offset, as: UInt64.self)
            offset += 8
        }

        mutating func string(_ s: String) {
            var s = s
            s.withUTF8 { u in
                u32(u.count)
                precondition(offset + u.count <= capacity)
                if let p = u.baseAddress { (base + offset).copyMemory(from: p, byteCount: u.count) }
                offset += u.count
            }
        }

        mutating func put(_ record: Record) {
            tag(.object)
            u32(record.count)
            let sizeAt = offset
            u32(0)
            for (k, v) in record.fields {
                string(k)
                put(v)
            }
            base.storeBytes(of: UInt32(offset - sizeAt - 4).littleEndian, toByteOffset: sizeAt, as: UInt32.self)
        }

        mutating func put(_ value: Value) {
            switch value {
            case .null: tag(.null)
            case .bool(let v): tag(v ? .true : .false)
            case .int(let v): tag(.int); u64(UInt64(bitPattern: v))
            case .double(let v): tag(.double); u64(v.bitPattern)
            case .string(let s): tag(.string); string(s)
            case .array(let a):
                tag(.array)
                u32(a.count)
                let sizeAt = offset
                u32(0)
                for v in a { put(v) }
                base.storeBytes(of: UInt32(offset - sizeAt - 4).littleEndian, toByteOffset: sizeAt, as: UInt32.self)
            case .object(let r): put(r)
            }
        }
    }
}
