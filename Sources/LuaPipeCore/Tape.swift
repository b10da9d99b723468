import OrderedCollections

/// A record in the flat binary form that crosses to Lua (see CLuaShim.h for the layout):
/// the JSON reader writes it, the Lua bridge builds tables from it in C, the JSON writer reads
/// it. A pipeline of Lua plugins never builds a `Value` at all.
public struct Tape: Sendable, Hashable {
    public enum Tag: UInt8 {
        case null = 0, `false` = 1, `true` = 2, int = 3, double = 4, string = 5, array = 6, object = 7
    }

    public var bytes: [UInt8]

    public init() { bytes = [] }
    public init(bytes: [UInt8]) { self.bytes = bytes }

    public init(_ record: Record) { bytes = TapeEncoder.encode(record) }

    public init(_ value: Value) { bytes = TapeEncoder.encode(value) }

    /// The tag of the top-level value.
    public var tag: Tag? { bytes.first.flatMap(Tag.init(rawValue:)) }

    // MARK: Writing

    @inline(__always) static func appendU32(_ v: UInt32, to b: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { b.append(contentsOf: $0) }
    }

    @inline(__always) static func patchU32(_ v: UInt32, at i: Int, in b: inout [UInt8]) {
        b.withUnsafeMutableBytes { $0.storeBytes(of: v.littleEndian, toByteOffset: i, as: UInt32.self) }
    }

    // MARK: Reading

    /// The value this tape holds. Traps on a malformed tape: tapes are only made by this
    /// module and by CLuaShim, never from outside input.
    public func value() -> Value {
        bytes.withUnsafeBufferPointer { buf in
            var i = 0
            return Self.readValue(buf, &i)
        }
    }

    /// The record this tape holds, or nil when its top level is not an object.
    public func record() -> Record? {
        if case .object(let r) = value() { return r }
        return nil
    }

    @inline(__always) static func readU32(_ b: UnsafeBufferPointer<UInt8>, _ i: inout Int) -> Int {
        let v = UnsafeRawBufferPointer(b).loadUnaligned(fromByteOffset: i, as: UInt32.self)
        i += 4
        return Int(UInt32(littleEndian: v))
    }

    static func readString(_ b: UnsafeBufferPointer<UInt8>, _ i: inout Int) -> String {
        let n = readU32(b, &i)
        let s = String(decoding: UnsafeBufferPointer(rebasing: b[i..<i + n]), as: UTF8.self)
        i += n
        return s
    }

    static func readValue(_ b: UnsafeBufferPointer<UInt8>, _ i: inout Int) -> Value {
        let tag = Tag(rawValue: b[i])!
        i += 1
        switch tag {
        case .null: return .null
        case .false: return .bool(false)
        case .true: return .bool(true)
        case .int:
            let v = UnsafeRawBufferPointer(b).loadUnaligned(fromByteOffset: i, as: Int64.self)
            i += 8
            return .int(Int64(littleEndian: v))
        case .double:
            let v = UnsafeRawBufferPointer(b).loadUnaligned(fromByteOffset: i, as: UInt64.self)
            i += 8
            return .double(Double(bitPattern: UInt64(littleEndian: v)))
        case .string: return .string(readString(b, &i))
        case .array:
            let n = readU32(b, &i)
            i += 4
            var a: [Value] = []
            a.reserveCapacity(n)
            for _ in 0..<n { a.append(readValue(b, &i)) }
            return .array(a)
        case .object:
            let n = readU32(b, &i)
            i += 4
            var keys: [String] = []
            var values: [Value] = []
            keys.reserveCapacity(n)
            values.reserveCapacity(n)
            for _ in 0..<n {
                keys.append(readString(b, &i))
                values.append(readValue(b, &i))
            }
            // Every producer of tapes writes an object's keys once (the JSON readers refuse
            // duplicates, a Lua table or a Record cannot hold one twice), so no key is looked
            // up before it goes in.
            return .object(Record(OrderedDictionary(uncheckedUniqueKeys: keys, values: values)))
        }
    }
}
