import LuaPipeCore
@testable import LuaRuntime
import Testing

/// Every table built from a tape (the record, its nested objects, decoded values, ctx.shared
/// values) keeps its keys' order for its whole life: keys keep their place while they exist,
/// keys added later go after them in sorted order (Fixtures/order/cases.lua).
@Suite("Key order")
struct OrderTests {
    static let input = #"{"z":1,"nested":{"y":1,"b":{"q":1,"c":2},"a":[{"n":1,"m":2}]},"list":[1],"a":true}"#

    static let cases: [(String, [String?])] = [
        ("decode_keeps_order", [#"{"z":1,"nested":{"y":1,"b":{"q":1,"c":2},"a":[{"n":1,"m":2}]},"list":[1],"a":true,"decoded":{"z":1,"a":{"y":1,"b":2},"m":[{"q":1,"c":2}]}}"#]),
        ("encode_decode_round_trip", [input]),
        ("decoded_then_changed", [#"{"z":1,"nested":{"y":1,"b":{"q":1,"c":2},"a":[{"n":1,"m":2}]},"list":[1],"a":true,"d":{"z":1,"x":3,"a":2,"b":1}}"#]),
        ("keep_nested", [input, #"{"kept":{"y":1,"b":{"q":1,"c":2},"a":[{"n":1,"m":2}]}}"#]),
        ("keep_record_after_pairs", [input, String(input.dropLast()) + #","added":true}"#]),
        ("keep_decoded", [input, #"{"kept":{"zz":{"b":1,"a":2},"aa":[]}}"#]),
        ("shared_round_trip", [input]),
        ("emptied_list_later", [#"{"z":1,"nested":{"y":1,"b":{"q":1,"c":2},"a":[{"n":1,"m":2}]},"list":[],"a":true}"#, #"{"list":[]}"#]),
    ]

    @Test("a table built from a tape keeps its keys' order, also past its call", arguments: cases.map(\.0))
    func order(_ name: String) async throws {
        let expected = Self.cases.first { $0.0 == name }!.1
        let out = try await withLua { lua -> [String?] in
            let cases = try lua.load(file: fixturePath("order/cases.lua"))
            defer { lua.release(cases) }
            let fn = lua.refField(cases, name)!
            defer { lua.release(fn) }
            var outputs: [String?] = []
            for _ in expected {
                let o = try lua.call(fn, arg: try JSONReader.parseRecord(Self.input), mode: .record, allowEmit: true)
                outputs.append(o.output.map(json))
            }
            return outputs
        }
        #expect(out == expected)
    }

    @Test("the order a table keeps is Lua heap: it counts against memory_mb")
    func orderIsCounted() async throws {
        // 10k objects of 8 keys kept: decoded (with an order each) against built in Lua.
        let (decoded, built) = try await withLua(.init(memoryLimit: 64 << 20)) { lua -> (Int, Int) in
            let fn = try lua.load("""
                local kept
                return function(r)
                  kept = nil
                  collectgarbage(); collectgarbage()
                  kept = {}
                  for i = 1, 10000 do
                    kept[i] = r.decode and luapipe.json.decode('{"h":1,"g":2,"f":3,"e":4,"d":5,"c":6,"b":7,"a":8}')
                      or { h = 1, g = 2, f = 3, e = 4, d = 5, c = 6, b = 7, a = 8 }
                  end
                  collectgarbage(); collectgarbage()
                  return false
                end
                """, chunkName: "=keep")
            defer { lua.release(fn) }
            _ = try lua.call(fn, arg: try JSONReader.parseRecord(#"{"decode":true}"#), mode: .record)
            let decoded = lua.memoryUsed
            _ = try lua.call(fn, arg: try JSONReader.parseRecord(#"{"decode":false}"#), mode: .record)
            return (decoded, lua.memoryUsed)
        }
        // Each order: a userdata of 4 + 8 * 5 bytes and its entry in the order table.
        #expect(decoded > built + 10_000 * 44, "decoded \(decoded >> 10) KiB, built \(built >> 10) KiB")
    }
}
