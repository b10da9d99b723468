import CLuaPipeJSON
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a JSON text was refused, and where (byte offset in the text).
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var offset: Int
    public var description: String { "\(message) at byte \(offset + 1)" }
}

/// Reads JSON text straight into a `Tape`.
///
/// Hand-written because Foundation's JSONSerialization costs about 37 µs a record here and
/// loses the integer/float distinction and key order; this reader keeps both and stays near
/// 1 µs (see docs/performance.md). It follows RFC 8259 and refuses what docs/reference.md calls an
/// input error: bad syntax, trailing text, invalid UTF-8, nesting deeper than 512, and
/// duplicate keys (I-JSON, RFC 7493: a record with one key twice has no single meaning).
public struct JSONReader {
    public static let maxDepth = 512

    private let p: UnsafeBufferPointer<UInt8>
    private var i = 0
    private var out: [UInt8]
    private var keys: [(start: Int, count: Int, at: Int)] = []  // in `out`; `at` in the text

    /// `capacity`: twice the text covers most tapes (a key and a small number take 22 bytes
    /// for 13 of text), so a long line's tape is not copied as it grows.
    private init(_ p: UnsafeBufferPointer<UInt8>, capacity: Int) {
        self.p = p
        out = []
        out.reserveCapacity(capacity)
    }

    /// The Swift reader alone: the reference the C reader is tested against.
    public static func referenceParseRecord(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONError) -> Tape {
        var r = JSONReader(bytes, capacity: 2 * bytes.count + 64)
        r.skipSpace()
        guard r.i < bytes.count, bytes[r.i] == UInt8(ascii: "{") else {
            if r.i >= bytes.count { throw JSONError(message: "empty input", offset: r.i) }
            try r.parseValue(depth: 0)  // a valid non-object is "not a record"; invalid: syntax
            throw JSONError(message: "a JSON value that is not an object (a record must be {...})", offset: 0)
        }
        try r.parseValue(depth: 0)
        try r.finish()
        return Tape(bytes: r.out)
    }

    public static func referenceParseValue(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONError) -> Tape {
        var r = JSONReader(bytes, capacity: 2 * bytes.count + 64)
        r.skipSpace()
        try r.parseValue(depth: 0)
        try r.finish()
        return Tape(bytes: r.out)
    }

    private mutating func finish() throws(JSONError) {
        skipSpace()
        if i < p.count { throw fail("unexpected text after the JSON value") }
    }

    private func fail(_ message: String) -> JSONError { JSONError(message: message, offset: i) }

    @inline(__always) private mutating func skipSpace() {
        while i < p.count {
            let c = p[i]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 } else { break }
        }
    }

    private mutating func parseValue(depth: Int) throws(JSONError) {
        guard i < p.count else { throw fail("unexpected end of input") }
        switch p[i] {
        case UInt8(ascii: "{"): try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""):
            out.append(Tape.Tag.string.rawValue)
            try parseString()
        case UInt8(ascii: "t"): try literal("true", Tape.Tag.true)
        case UInt8(ascii: "f"): try literal("false", Tape.Tag.false)
        case UInt8(ascii: "n"): try literal("null", Tape.Tag.null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try parseNumber()
        case UInt8(ascii: "N"), UInt8(ascii: "I"):
            throw fail("NaN and Infinity are not JSON numbers")
        default: throw fail("unexpected character '\(printable(p[i]))'")
        }
    }

    private func printable(_ c: UInt8) -> String {
        c >= 0x20 && c < 0x7F ? String(UnicodeScalar(c)) : "\\x" + String(c, radix: 16)
    }

    private mutating func literal(_ word: StaticString, _ tag: Tape.Tag) throws(JSONError) {
        let n = word.utf8CodeUnitCount
        guard p.count - i >= n, memcmp(p.baseAddress! + i, word.utf8Start, n) == 0 else {
            throw fail("unexpected character '\(printable(p[i]))'")
        }
        i += n
        out.append(tag.rawValue)
    }

    private mutating func beginContainer(_ tag: Tape.Tag, depth: Int) throws(JSONError) -> Int {
        if depth > Self.maxDepth { throw fail("nesting deeper than \(Self.maxDepth) levels") }
        out.append(tag.rawValue)
        let at = out.count
        out.append(contentsOf: repeatElement(0, count: 8))
        i += 1
        return at
    }

    private mutating func endContainer(at: Int, count: Int) {
        Tape.patchU32(UInt32(count), at: at, in: &out)
        Tape.patchU32(UInt32(out.count - at - 8), at: at + 4, in: &out)
    }

    private mutating func parseArray(depth: Int) throws(JSONError) {
        let at = try beginContainer(.array, depth: depth)
        var count = 0
        skipSpace()
        if i < p.count, p[i] == UInt8(ascii: "]") {
            i += 1
            endContainer(at: at, count: 0)
            return
        }
        while true {
            skipSpace()
            try parseValue(depth: depth)
            count += 1
            skipSpace()
            guard i < p.count else { throw fail("unexpected end of input in an array") }
            if p[i] == UInt8(ascii: ",") { i += 1; continue }
            if p[i] == UInt8(ascii: "]") { i += 1; break }
            throw fail("expected ',' or ']' in an array")
        }
        endContainer(at: at, count: count)
    }

    private mutating func parseObject(depth: Int) throws(JSONError) {
        let at = try beginContainer(.object, depth: depth)
        let keyBase = keys.count
        defer { keys.removeSubrange(keyBase...) }
        var count = 0
        skipSpace()
        if i < p.count, p[i] == UInt8(ascii: "}") {
            i += 1
            endContainer(at: at, count: 0)
            return
        }
        do throws(JSONError) {
            while true {
                skipSpace()
                guard i < p.count, p[i] == UInt8(ascii: "\"") else {
                    throw fail(i < p.count ? "expected a string key in an object" : "unexpected end of input in an object")
                }
                let keyAt = i
                let start = out.count + 4
                try parseString()
                let key = (start: start, count: out.count - start, at: keyAt)
                if keys.count - keyBase < Self.linearKeys, isDuplicate(key, from: keyBase) {
                    throw duplicate(key)
                }
                keys.append(key)
                skipSpace()
                guard i < p.count, p[i] == UInt8(ascii: ":") else { throw fail("expected ':' after an object key") }
                i += 1
                skipSpace()
                try parseValue(depth: depth)
                count += 1
                skipSpace()
                guard i < p.count else { throw fail("unexpected end of input in an object") }
                if p[i] == UInt8(ascii: ",") { i += 1; continue }
                if p[i] == UInt8(ascii: "}") { i += 1; break }
                throw fail("expected ',' or '}' in an object")
            }
        } catch {
            // A wide object's keys are checked when it ends; one that ends in an error first
            // reports a duplicate that came before the error, as a key-by-key check would.
            if let d = firstDuplicate(from: keyBase), d.at < error.offset { throw duplicate(d) }
            throw error
        }
        if let d = firstDuplicate(from: keyBase) { throw duplicate(d) }
        endContainer(at: at, count: count)
    }

    /// Keys an object may have before its duplicate check waits for its end (as in the C reader).
    static let linearKeys = 16

    private func isDuplicate(_ key: (start: Int, count: Int, at: Int), from base: Int) -> Bool {
        out.withUnsafeBufferPointer { o in
            for k in keys[base...] where k.count == key.count {
                if memcmp(o.baseAddress! + k.start, o.baseAddress! + key.start, key.count) == 0 { return true }
            }
            return false
        }
    }

    /// In an object of more than `linearKeys` keys (since `base` in `keys`): the first key
    /// that repeats an earlier one. The C helper sorts the keys' hashes: O(n), where a scan
    /// per key was O(n²) (100k keys and a stray byte took 35 s to refuse).
    private func firstDuplicate(from base: Int) -> (start: Int, count: Int, at: Int)? {
        let n = keys.count - base
        guard n > Self.linearKeys else { return nil }
        let offsets = keys[base...].map { UInt32($0.start - 4) }  // the key entries: u32 length, bytes
        let first = out.withUnsafeBufferPointer { o in
            offsets.withUnsafeBufferPointer { lp_json_first_duplicate(o.baseAddress!, $0.baseAddress!, n) }
        }
        return first >= 0 ? keys[base + first] : nil
    }

    private mutating func duplicate(_ key: (start: Int, count: Int, at: Int)) -> JSONError {
        i = key.at
        let name = String(decoding: out[key.start..<key.start + min(key.count, 200)], as: UTF8.self)
        return fail("duplicate key \"\(name)\"\(key.count > 200 ? "…" : "")")
    }

    /// Parses a string at `i` (at its quote) and appends u32 length + UTF-8 bytes.
    private mutating func parseString() throws(JSONError) {
        i += 1
        let lenAt = out.count
        out.append(contentsOf: repeatElement(0, count: 4))
        let start = out.count
        while true {
            // Fast path: plain ASCII runs.
            var j = i
            while j < p.count {
                let c = p[j]
                if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c < 0x20 || c >= 0x80 { break }
                j += 1
            }
            if j > i {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: p[i..<j]))
                i = j
            }
            guard i < p.count else { throw fail("unterminated string") }
            let c = p[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                break
            } else if c == UInt8(ascii: "\\") {
                try parseEscape()
            } else if c < 0x20 {
                throw fail("control character in a string (it must be escaped)")
            } else {
                try copyUTF8Sequence()
            }
        }
        Tape.patchU32(UInt32(out.count - start), at: lenAt, in: &out)
    }

    private mutating func copyUTF8Sequence() throws(JSONError) {
        let c = p[i]
        var need = 0
        var cp: UInt32 = 0
        switch c {
        case 0xC2...0xDF: need = 1; cp = UInt32(c & 0x1F)
        case 0xE0...0xEF: need = 2; cp = UInt32(c & 0x0F)
        case 0xF0...0xF4: need = 3; cp = UInt32(c & 0x07)
        default: throw fail("invalid UTF-8")
        }
        guard p.count - i > need else { throw fail("invalid UTF-8") }
        for k in 1...need {
            let cc = p[i + k]
            guard cc & 0xC0 == 0x80 else { throw fail("invalid UTF-8") }
            cp = (cp << 6) | UInt32(cc & 0x3F)
        }
        if (need == 2 && (cp < 0x800 || (0xD800...0xDFFF).contains(cp))) || (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)) {
            throw fail("invalid UTF-8")
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: p[i...i + need]))
        i += need + 1
    }

    private mutating func hex4() throws(JSONError) -> UInt32 {
        guard p.count - i >= 4 else { throw fail("bad \\u escape") }
        var v: UInt32 = 0
        for k in 0..<4 {
            let c = p[i + k]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw fail("bad \\u escape")
            }
            v = v << 4 | d
        }
        i += 4
        return v
    }

    private mutating func parseEscape() throws(JSONError) {
        i += 1
        guard i < p.count else { throw fail("unterminated string") }
        let c = p[i]
        i += 1
        switch c {
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "/"): out.append(0x2F)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var cp = try hex4()
            if (0xD800...0xDBFF).contains(cp) {
                guard p.count - i >= 6, p[i] == UInt8(ascii: "\\"), p[i + 1] == UInt8(ascii: "u") else {
                    throw fail("lone surrogate in a \\u escape")
                }
                i += 2
                let lo = try hex4()
                guard (0xDC00...0xDFFF).contains(lo) else { throw fail("lone surrogate in a \\u escape") }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(cp) {
                throw fail("lone surrogate in a \\u escape")
            }
            appendScalar(cp)
        default:
            i -= 1
            throw fail("bad escape '\\\(printable(c))'")
        }
    }

    private mutating func appendScalar(_ cp: UInt32) {
        switch cp {
        case 0..<0x80: out.append(UInt8(cp))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | cp >> 6)); out.append(UInt8(0x80 | cp & 0x3F))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | cp >> 12)); out.append(UInt8(0x80 | (cp >> 6) & 0x3F))
            out.append(UInt8(0x80 | cp & 0x3F))
        default:
            out.append(UInt8(0xF0 | cp >> 18)); out.append(UInt8(0x80 | (cp >> 12) & 0x3F))
            out.append(UInt8(0x80 | (cp >> 6) & 0x3F)); out.append(UInt8(0x80 | cp & 0x3F))
        }
    }

    private mutating func parseNumber() throws(JSONError) {
        let start = i
        var negative = false
        if p[i] == UInt8(ascii: "-") { negative = true; i += 1 }
        guard i < p.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(p[i]) else {
            throw fail("bad number")
        }
        var mag: UInt64 = 0
        var overflow = false
        if p[i] == UInt8(ascii: "0") {
            i += 1
            if i < p.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(p[i]) {
                throw fail("bad number (leading zero)")
            }
        } else {
            while i < p.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(p[i]) {
                let (m1, o1) = mag.multipliedReportingOverflow(by: 10)
                let (m2, o2) = m1.addingReportingOverflow(UInt64(p[i] - UInt8(ascii: "0")))
                if o1 || o2 { overflow = true }
                mag = m2
                i += 1
            }
        }
        var isFloat = false
        if i < p.count, p[i] == UInt8(ascii: ".") {
            isFloat = true
            i += 1
            guard i < p.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(p[i]) else { throw fail("bad number") }
            while i < p.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(p[i]) { i += 1 }
        }
        if i < p.count, p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E") {
            isFloat = true
            i += 1
            if i < p.count, p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-") { i += 1 }
            guard i < p.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(p[i]) else { throw fail("bad number") }
            while i < p.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(p[i]) { i += 1 }
        }
        if !isFloat && !overflow {
            if !negative, mag <= UInt64(Int64.max) {
                appendInt(Int64(mag)); return
            }
            if negative, mag <= UInt64(Int64.max) + 1 {
                appendInt(mag == UInt64(Int64.max) + 1 ? Int64.min : -Int64(mag)); return
            }
        }
        // A float, or an integer literal too large for 64 bits (read as a float, docs/reference.md).
        let d = parseDouble(start, i)
        if !d.isFinite { i = start; throw fail("number out of range") }
        out.append(Tape.Tag.double.rawValue)
        withUnsafeBytes(of: d.bitPattern.littleEndian) { out.append(contentsOf: $0) }
    }

    private func parseDouble(_ from: Int, _ to: Int) -> Double {
        let n = to - from
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: n + 1) { buf in
            for k in 0..<n { buf[k] = CChar(bitPattern: p[from + k]) }
            buf[n] = 0
            return strtod(buf.baseAddress!, nil)
        }
    }

    @inline(__always) private mutating func appendInt(_ v: Int64) {
        out.append(Tape.Tag.int.rawValue)
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }
}
