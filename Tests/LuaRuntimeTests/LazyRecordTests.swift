import LuaPipeCore
@testable import LuaRuntime
import Testing

/// The record a call receives is built field by field as the plugin reads it (lp_lazy.c).
/// These plugins (Fixtures/lazy/cases.lua) try every way a plugin could tell; each must get
/// what a plain table would give.
@Suite("Lazy records")
struct LazyRecordTests {
    static let input = #"{"a":1,"b":"x","c":{"z":1,"y":[1,2]},"d":null,"e0":[]}"#
    static let rest = #""c":{"z":1,"y":[1,2]},"d":null,"e0":[]"#

    static let cases: [(String, String)] = [
        ("read_one", #"{"a":1,"b":"x!",\#(rest)}"#),
        ("delete_unread", #"{"b":"x",\#(rest)}"#),
        ("write_unread", #"{"a":1,"b":"x","c":5,"d":null,"e0":[]}"#),
        ("read_missing", #"{"a":1,"b":"x",\#(rest),"m":true}"#),
        ("deleted_stays_deleted", #"{"b":"x",\#(rest),"again":true}"#),
        ("add_then_delete", #"{"a":1,\#(rest)}"#),
        ("nested_keeps_order", #"{"a":1,"b":"x","c":{"z":1,"y":[1,2],"x":0},"d":null,"e0":[]}"#),
        ("pairs_sees_every_field", #"{"a":1,"b":"x",\#(rest),"keys":"a,b,c,d,e0"}"#),
        ("next_sees_every_field", #"{"a":1,"b":"x",\#(rest),"n":5}"#),
        ("rawget_sees_unread", #"{"a":1,"b":"x",\#(rest),"raw":"x"}"#),
        ("rawset_unread", #"{"a":2,"b":"x",\#(rest)}"#),
        ("no_metatable", #"{"a":1,"b":"x",\#(rest),"mt":true}"#),
        ("setmetatable_keeps_fields", #"{"a":1,"b":"x",\#(rest),"missing":"default"}"#),
        ("mark_as_object", #"{"a":1,"b":"x",\#(rest),"e":1}"#),
        ("return_itself", input),
        ("encode_itself", #"{"a":1,"b":"x",\#(rest),"json":"{\"a\":1,\"b\":\"x\",\"c\":{\"z\":1,\"y\":[1,2]},\"d\":null,\"e0\":[]}"}"#),
        ("integer_keys_are_absent", #"{"a":1,"b":"x",\#(rest),"i":true}"#),
    ]

    @Test("a plugin sees a plain table, whatever it does with it", arguments: cases.map(\.0))
    func behavesAsPlainTable(_ name: String) async throws {
        let expected = Self.cases.first { $0.0 == name }!.1
        let out = try await withLua { lua in try Self.run(lua, name, [Self.input]) }
        #expect(out.outputs == [expected])
        #expect(out.emits.isEmpty)
    }

    @Test("a list item set on a record is refused on the way back, not lost",
          arguments: ["integer_key_added", "list_item_added"])
    func listItemRefused(_ name: String) async throws {
        let message = try await withLua { lua -> String in
            do {
                _ = try Self.run(lua, name, [Self.input])
                return "no error"
            } catch let e as LuaError {
                return e.message
            }
        }
        #expect(message.contains("a table mixes list items and named fields"), "\(message)")
    }

    @Test("a record with many fields: each read, write, deletion and addition lands")
    func wide() async throws {
        let input = "{" + (1...40).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + "}"
        var fields = (1...40).map { i -> String in
            if i == 2 { return "" }
            if i == 40 { return #""k40":"last""# }
            return "\"k\(i)\":\(i % 3 == 1 ? i * 2 : i)"
        }.filter { !$0.isEmpty }
        fields += [#""k41":40"#, #""missing":true"#]
        let out = try await withLua { lua in try Self.run(lua, "wide", [input]) }
        #expect(out.outputs == ["{" + fields.joined(separator: ",") + "}"])
    }

    @Test("an emitted record is whole, and a record kept past its call stays whole")
    func emittedAndKept() async throws {
        let emitted = try await withLua { lua in try Self.run(lua, "emit_itself", [Self.input]) }
        #expect(emitted.outputs == [nil])
        #expect(emitted.emits == [Self.input])
        let second = #"{"a":2,"b":"y"}"#
        let kept = try await withLua { lua in try Self.run(lua, "keep_then_emit", [Self.input, second]) }
        #expect(kept.outputs == [Self.input, second])
        #expect(kept.emits == [Self.input])
    }

    /// Calls the named case once per input; returns each output (nil: dropped) and all emits.
    static func run(_ lua: LuaState, _ name: String, _ inputs: [String]) throws -> (outputs: [String?], emits: [String]) {
        let cases = try lua.load(file: fixturePath("lazy/cases.lua"))
        defer { lua.release(cases) }
        let fn = lua.refField(cases, name)!
        defer { lua.release(fn) }
        var outputs: [String?] = []
        var emits: [String] = []
        for input in inputs {
            let outcome = try lua.call(fn, arg: try JSONReader.parseRecord(input), mode: .record, allowEmit: true)
            outputs.append(outcome.result == .drop ? nil : outcome.output.map(json))
            emits += outcome.emits.map(json)
        }
        return (outputs, emits)
    }
}
