import Foundation
import LuaPipeCore
import Testing

/// The C reader (the fast path) must accept exactly what the Swift reader accepts and make the
/// same tape: over the fuzz seed corpus and every one-byte change of a few records.
@Suite("C and Swift JSON readers agree")
struct JSONReaderAgreementTests {
    static let seeds = [
        #"{"id":100000,"name":"user_000000","email":"a@b.c","score":0.25,"tags":["x",[],{}],"n":null,"t":true,"f":false}"#,
        #"{"s":"\u00e9\ud83d\ude00\n\"\\\/","neg":-0,"big":18446744073709551616,"e":-1.5E+3,"min":-9223372036854775808}"#,
        #"  {"nested":{"a":{"b":[1,2,{"c":"é😀"}]}},"k":""}  "#,
        #"[1,"two",3.0,null]"#,
    ]
    /// Bytes that make a text valid, invalid, or differently valid.
    static let bytes: [UInt8] = Array(#"{}[]",:\/0123456789-+.eEtfnu aA"#.utf8) + [0, 0x0A, 0x1F, 0x7F, 0x80, 0xC3, 0xE2, 0xED, 0xF0, 0xF4, 0xF5, 0xFF]

    static func check(_ text: [UInt8]) -> Bool {
        text.withUnsafeBufferPointer { b in
            let record = JSONReader.parseFast(b, recordOnly: true)?.bytes == (try? JSONReader.referenceParseRecord(b))?.bytes
            let value = JSONReader.parseFast(b, recordOnly: false)?.bytes == (try? JSONReader.referenceParseValue(b))?.bytes
            return record && value
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
}
