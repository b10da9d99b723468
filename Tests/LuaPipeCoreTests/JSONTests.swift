import LuaPipeCore
import Testing

@Suite("JSON reader and writer")
struct JSONTests {
    @Test("round trip keeps integers, floats, null, empty containers and key order", arguments: [
        #"{"b":1,"a":1.0,"n":null,"e":[],"o":{},"s":"x\"y\\z\n","neg":-0.0,"exp":1e-05}"#,
        #"{"nested":{"z":[1,[2,[3]]],"a":{"b":{}}}}"#,
        #"{"u":"\u00e9\ud83d\ude00"}"#,
    ])
    func roundTrip(_ text: String) throws {
        let once = JSONWriter.encode(try JSONReader.parseRecord(text).value())
        let twice = JSONWriter.encode(try JSONReader.parseRecord(once).value())
        #expect(once == twice)
        #expect(try JSONReader.parseRecord(text).value() == JSONReader.parseRecord(once).value())
    }

    @Test("writes only the escapes JSON requires")
    func escapes() throws {
        let v = try JSONReader.parseRecord(#"{"s":"\u00e9\/\u0007"}"#)
        var out: [UInt8] = []
        JSONWriter.write(v, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "{\"s\":\"é/\\u0007\"}")
    }

    @Test("refuses what is not one JSON object, saying what and where", arguments: [
        ("{", "unexpected end of input"),
        (#"{"a":1} x"#, "unexpected text after the JSON value"),
        ("[1,2]", "not an object"),
        ("42", "not an object"),
        (#"{"a":01}"#, "leading zero"),
        (#"{"a":NaN}"#, "NaN and Infinity are not JSON numbers"),
        (#"{"a":1,"a":2}"#, "duplicate key \"a\""),
        (#"{"a":"\ud800"}"#, "lone surrogate"),
        ("{\"a\":\"\u{1}\"}", "control character"),
        (#"{"a":tru}"#, "unexpected character"),
        (#"{'a':1}"#, "expected a string key"),
        (#"{"a":1e999}"#, "number out of range"),
    ])
    func errors(_ text: String, _ expected: String) {
        #expect(throws: JSONError.self) { try JSONReader.parseRecord(text) }
        do {
            _ = try JSONReader.parseRecord(text)
        } catch {
            #expect(error.message.contains(expected), "\(error)")
        }
    }

    @Test("refuses invalid UTF-8 and nesting deeper than 512")
    func utf8AndDepth() {
        let bad: [UInt8] = Array(#"{"a":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)
        #expect(throws: JSONError.self) { try bad.withUnsafeBufferPointer { try JSONReader.parseRecord($0) } }
        let deep = #"{"a":"# + String(repeating: "[", count: 600) + String(repeating: "]", count: 600) + "}"
        #expect { try JSONReader.parseRecord(deep) } throws: { ($0 as? JSONError)?.message.contains("deeper than 512") == true }
        let ok = #"{"a":"# + String(repeating: "[", count: 500) + String(repeating: "]", count: 500) + "}"
        #expect(throws: Never.self) { try JSONReader.parseRecord(ok) }
    }

    @Test("Value and Tape convert both ways")
    func valueTape() {
        let r: Record = ["b": 1, "a": [1.5, nil, "x"], "o": ["k": true]]
        #expect(Tape(r).record() == r)
        #expect(JSONWriter.encode(r) == #"{"b":1,"a":[1.5,null,"x"],"o":{"k":true}}"#)
    }
}
