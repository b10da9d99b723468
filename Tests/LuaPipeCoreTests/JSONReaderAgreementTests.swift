import Foundation
import LuaPipeCore
import Testing

/// The C reader (the fast path) must accept exactly what the Swift reader accepts and make the
/// same tape, and the C writer must write what the Swift writer writes: over the fuzz seed
/// corpus and every one-byte change of a few records.
@Suite("C and Swift JSON readers and writers agree")
struct JSONReaderAgreementTests {
    static let seeds = [
        #"{"id":100000,"name":"user_000000","email":"a@b.c","score":0.25,"tags":["x",[],{}],"n":null,"t":true,"f":false}"#,
        #"{"s":"\u00e9\ud83d\ude00\n\"\\\/","neg":-0,"big":18446744073709551616,"e":-1.5E+3,"min":-9223372036854775808}"#,
        #"  {"nested":{"a":{"b":[1,2,{"c":"é😀"}]}},"k":""}  "#,
        #"[1,"two",3.0,null]"#,
        #"{"d":[0.1,1e-05,1e+20,5e-324,1.7976931348623157e+308,-0.0,100000.0,1e16,123456789012345680000.0],"c":"\u0001\u001f\t"}"#,
        // Around the C reader's fast path for decimals (mantissa < 2^53, at most 22 decimals).
        #"[4.35,-0.5,900719925474099.1,9007199254740993.5,0.1234567890123456789,1e-22,0.0000000000000000000001,0.00000000000000000000001,18446744073709551615.25]"#,
    ]
    /// Bytes that make a text valid, invalid, or differently valid.
    static let bytes: [UInt8] = Array(#"{}[]",:\/0123456789-+.eEtfnu aA"#.utf8) + [0, 0x0A, 0x1F, 0x7F, 0x80, 0xC3, 0xE2, 0xED, 0xF0, 0xF4, 0xF5, 0xFF]

    static func check(_ text: [UInt8]) -> Bool {
        text.withUnsafeBufferPointer { b in
            let record = JSONReader.parseFast(b, recordOnly: true)?.bytes == (try? JSONReader.referenceParseRecord(b))?.bytes
            let reference = try? JSONReader.referenceParseValue(b)
            let value = JSONReader.parseFast(b, recordOnly: false)?.bytes == reference?.bytes
            var written = true
            if let reference {  // and the C writer writes what the Swift writer writes
                var c: [UInt8] = [], swift: [UInt8] = []
                JSONWriter.write(reference, to: &c)
                JSONWriter.referenceWrite(reference, to: &swift)
                written = c == swift
            }
            return record && value && written
        }
    }

    @Test("every one-byte deletion, insertion and replacement of the seeds")
    func mutations() {
        var disagree: [String] = []
        var tried = 0
        for seed in Self.seeds {
            let s = Array(seed.utf8)
            var variants: [[UInt8]] = [s]
            for i in 0..<s.count {
                var d = s; d.remove(at: i); variants.append(d)
                for b in Self.bytes {
                    var r = s; r[i] = b; variants.append(r)
                    var ins = s; ins.insert(b, at: i); variants.append(ins)
                }
            }
            for v in variants {
                tried += 1
                if !Self.check(v) { disagree.append(String(decoding: v, as: UTF8.self)) }
            }
        }
        #expect(tried > 20_000)
        #expect(disagree.isEmpty, "\(disagree.prefix(5))")
    }

    @Test("the fuzz seed corpus, deep nesting and long lines")
    func corpus() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = root.appendingPathComponent("Fuzz/corpus/json")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(!files.isEmpty)
        for f in files {
            let data = try Data(contentsOf: dir.appendingPathComponent(f))
            #expect(Self.check(Array(data)), "\(f)")
        }
        for depth in [511, 512, 513, 100_000] {
            let deep = Array((String(repeating: "[", count: depth) + String(repeating: "]", count: depth)).utf8)
            #expect(Self.check(deep), "depth \(depth)")
            let obj = Array(("{\"a\":" + String(repeating: "[", count: depth - 1) + String(repeating: "]", count: depth - 1) + "}").utf8)
            #expect(Self.check(obj), "object depth \(depth)")
        }
        let long = Array(("{\"s\":\"" + String(repeating: "ab\\n", count: 400_000) + "\"}").utf8)
        #expect(Self.check(long))
    }

    /// `Tape(Record)` measures the record, then writes it into a buffer of that size: its
    /// tape must be the one the reader makes of the record's JSON, byte for byte.
    @Test("a Record encodes to the tape the reader makes of its JSON")
    func recordEncoding() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = root.appendingPathComponent("Fuzz/corpus/json")
        var texts = Self.seeds.map { Array($0.utf8) }
        for f in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
            texts.append(Array(try Data(contentsOf: dir.appendingPathComponent(f))))
        }
        texts.append(Array(#"{"":"","e":[],"o":{},"u":"é😀\u0000","n":[[[]],{"a":[null,true,false,-1,1.5e300]}]}"#.utf8))
        var checked = 0
        for text in texts {
            guard let tape = text.withUnsafeBufferPointer({ try? JSONReader.referenceParseRecord($0) }) else { continue }
            let record = try #require(tape.record())
            #expect(Tape(record).bytes == tape.bytes, "\(String(decoding: text, as: UTF8.self))")
            #expect(Tape(Value.object(record)).bytes == tape.bytes)
            checked += 1
        }
        #expect(checked >= 5)
    }

    /// Past 16 keys both readers check an object's keys when it ends, by sorting their hashes:
    /// a repeat anywhere, among keys that share a hash or not, is refused by both.
    @Test("objects with many keys: every duplicate refused, none invented", arguments: [17, 40, 1000])
    func wideObjects(_ n: Int) {
        let keys = (0..<n).map { "k\($0)" }
        func text(_ keys: [String]) -> [UInt8] {
            Array(("{" + keys.enumerated().map { "\"\($1)\":\($0)" }.joined(separator: ",") + ",\"in\":{" +
                   keys.map { "\"\($0)\":[]" }.joined(separator: ",") + "}}").utf8)
        }
        let unique = text(keys)
        #expect(Self.check(unique))
        let accepted = unique.withUnsafeBufferPointer { JSONReader.parseFast($0, recordOnly: true) } != nil
        #expect(accepted)
        for (i, j) in [(0, n - 1), (n - 1, n / 2), (15, 16), (16, 17 % n), (3, 0)] where i != j {
            var dup = keys
            dup[i] = keys[j]
            let t = text(dup)
            #expect(Self.check(t), "key \(i) repeats key \(j)")
            let refused = t.withUnsafeBufferPointer { JSONReader.parseFast($0, recordOnly: true) } == nil
            #expect(refused, "key \(i) repeats key \(j)")
        }
    }
}
