import CLuaPipeJSON

/// Writes tapes and values as compact JSON: UTF-8, only the escapes JSON requires, integers
/// as integers, floats always with a '.' or an exponent so they read back as floats.
public enum JSONWriter {
    /// Appends the JSON text of `tape` to `out`, written by the C writer (CLuaPipeJSON),
    /// which follows the Swift one below and uses its double formatting.
    public static func write(_ tape: Tape, to out: inout [UInt8]) {
        _ = installed
        tape.bytes.withUnsafeBufferPointer { b in
            guard let base = b.baseAddress else { return }
            defer { if b.count > 1 << 17 { lp_json_scratch_trim() } }  // a large record's buffer goes
            var n = 0
            if let text = lp_json_write_scratch(base, b.count, &n) {
                out.append(contentsOf: UnsafeBufferPointer(start: text, count: n))
            } else {
                var i = 0
                writeValue(b, &i, &out)
            }
        }
    }

    /// The Swift writer alone: the reference the C writer is tested against.
    public static func referenceWrite(_ tape: Tape, to out: inout [UInt8]) {
        tape.bytes.withUnsafeBufferPointer { b in
            var i = 0
            writeValue(b, &i, &out)
        }
    }

    private static let installed: Void = {
        lp_json_set_double_formatter { d, out in
            var s = d.description
            return s.withUTF8 { u in
                out!.update(from: u.baseAddress!, count: u.count)
                return Int32(u.count)
            }
        }
    }()

    public static func encode(_ value: Value) -> String {
        var out: [UInt8] = []
        write(Tape(value), to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    public static func encode(_ record: Record) -> String { encode(.object(record)) }

    static func writeValue(_ b: UnsafeBufferPointer<UInt8>, _ i: inout Int, _ out: inout [UInt8]) {
        let tag = Tape.Tag(rawValue: b[i])!
        i += 1
        switch tag {
        case .null: out.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])
        case .true: out.append(contentsOf: [0x74, 0x72, 0x75, 0x65])
        case .false: out.append(contentsOf: [0x66, 0x61, 0x6C, 0x73, 0x65])
        case .int:
            let v = Int64(littleEndian: UnsafeRawBufferPointer(b).loadUnaligned(fromByteOffset: i, as: Int64.self))
            i += 8
            writeInt(v, &out)
        case .double:
            let bits = UInt64(littleEndian: UnsafeRawBufferPointer(b).loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
            writeDouble(Double(bitPattern: bits), &out)
        case .string:
            let n = Tape.readU32(b, &i)
            writeString(UnsafeBufferPointer(rebasing: b[i..<i + n]), &out)
            i += n
        case .array:
            let n = Tape.readU32(b, &i)
            i += 4
            out.append(UInt8(ascii: "["))
            for k in 0..<n {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                writeValue(b, &i, &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object:
            let n = Tape.readU32(b, &i)
            i += 4
            out.append(UInt8(ascii: "{"))
            for k in 0..<n {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                let kn = Tape.readU32(b, &i)
                writeString(UnsafeBufferPointer(rebasing: b[i..<i + kn]), &out)
                i += kn
                out.append(UInt8(ascii: ":"))
                writeValue(b, &i, &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func writeInt(_ v: Int64, _ out: inout [UInt8]) {
        if v >= 0 && v < 10 { out.append(UInt8(ascii: "0") + UInt8(v)); return }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buf in
            var m = v.magnitude
            var k = 20
            repeat {
                k -= 1
                buf[k] = UInt8(ascii: "0") + UInt8(m % 10)
                m /= 10
            } while m > 0
            if v < 0 { out.append(UInt8(ascii: "-")) }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[k..<20]))
        }
    }

    static func writeDouble(_ d: Double, _ out: inout [UInt8]) {
        // Swift's description is the shortest text that reads back to the same double, and it
        // always has a '.' or an exponent ("1.0", "1e-05", "1e+20"): all valid JSON numbers.
        var s = d.description
        s.withUTF8 { out.append(contentsOf: $0) }
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    static func writeString(_ s: UnsafeBufferPointer<UInt8>, _ out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var start = 0
        for k in 0..<s.count {
            let c = s[k]
            if c >= 0x20 && c != 0x22 && c != 0x5C { continue }
            if k > start { out.append(contentsOf: UnsafeBufferPointer(rebasing: s[start..<k])) }
            start = k + 1
            switch c {
            case 0x22: out.append(contentsOf: [0x5C, 0x22])
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x08: out.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: out.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            default:
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 0xF)]])
            }
        }
        if s.count > start { out.append(contentsOf: UnsafeBufferPointer(rebasing: s[start..<s.count])) }
        out.append(UInt8(ascii: "\""))
    }
}
