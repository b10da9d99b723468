import LuaPipeCore
@testable import LuaRuntime
import Testing

@Suite("Value bridge")
struct BridgeTests {
    static let identity = "function(r) end"

    @Test("every value kind survives a round trip unchanged", arguments: [
        #"{"a":1,"b":1.0,"c":-0.5,"d":"x","e":true,"f":false,"g":null}"#,
        #"{"arr":[1,2.5,"s",null,[],{}],"obj":{"k":{"deep":[{"x":1}]}}}"#,
        #"{"empty_array":[],"empty_object":{}}"#,
        #"{"big":9223372036854775807,"small":-9223372036854775808,"f":1e+300,"g":5e-324}"#,
        #"{"zeta":1,"alpha":2,"mid":3}"#,
        #"{"uni":"héllo \u2603 😀","esc":"a\"b\\c\n\t\u0001"}"#,
    ])
    func roundTripKeepsEverything(_ input: String) async throws {
        let expected = json(try JSONReader.parseRecord(input))
        let (outPass, outReplace) = try await withLua { lua in
            (try roundTrip(lua, Self.identity, input).1, try roundTrip(lua, "function(r) return r end", input).1)
        }
        #expect(outPass == expected)
        #expect(outReplace == expected)
    }

    @Test("an integer literal too large for 64 bits reads as a float")
    func hugeIntegerIsFloat() throws {
        #expect(json(try JSONReader.parseRecord(#"{"n":18446744073709551616}"#)) == #"{"n":1.8446744073709552e+19}"#)
    }

    @Test("integers and floats keep their kind through Lua arithmetic")
    func numberKinds() async throws {
        let out = try await withLua { lua in
            try roundTrip(lua, "function(r) r.i = r.i + 1; r.f = r.f * 2; r.d = 3 / 1; r.m = 7 // 2 end",
                          #"{"i":1,"f":1.5}"#).1
        }
        #expect(out == #"{"i":2,"f":3.0,"d":3.0,"m":3}"#)
    }

    @Test("a key keeps its place; added keys are appended sorted; a removed key is gone")
    func keyOrder() async throws {
        let out = try await withLua { lua in
            try roundTrip(lua, "function(r) r.b = nil; r.zz = 1; r.aa = 2; r.c = 'changed'; r.nested.y = 0 end",
                          #"{"c":1,"b":2,"a":3,"nested":{"z":1,"x":2}}"#).1
        }
        #expect(out == #"{"c":"changed","a":3,"nested":{"z":1,"x":2,"y":0},"aa":2,"zz":1}"#)
    }

    @Test("a record built from scratch has sorted keys")
    func scratchRecordSorted() async throws {
        let out = try await withLua { lua in
            try roundTrip(lua, "function(r) return { c = 1, a = { z = 1, b = 2 }, b = r.x } end", #"{"x":true,"a":0}"#).1
        }
        #expect(out == #"{"a":{"b":2,"z":1},"b":true,"c":1}"#)
    }

    @Test("empty arrays and objects keep their kind, also when a plugin empties them")
    func emptyContainers() async throws {
        let out = try await withLua { lua in
            try roundTrip(lua, """
                function(r)
                  r.list[1] = nil; r.map.k = nil
                  r.new_array = luapipe.array(); r.new_object = luapipe.object(); r.plain = {}
                end
                """, #"{"list":[1],"map":{"k":1},"e1":[],"e2":{}}"#).1
        }
        #expect(out == #"{"list":[],"map":{},"e1":[],"e2":{},"new_array":[],"new_object":{},"plain":{}}"#)
    }

    @Test("null is luapipe.null in Lua and null again in JSON")
    func nullValue() async throws {
        let out = try await withLua { lua in
            try roundTrip(lua, "function(r) assert(r.n == luapipe.null); r.m = luapipe.null end", #"{"n":null}"#).1
        }
        #expect(out == #"{"n":null,"m":null}"#)
    }

    @Test("values JSON cannot hold are errors that name the field", arguments: [
        ("function(r) r.a.b = 0/0 end", "field 'a.b': NaN"),
        ("function(r) r.x = math.huge end", "field 'x': an infinite number"),
        ("function(r) r.a.self = r.a end", "field 'a.self': the table contains itself"),
        ("function(r) r.f = print end", "field 'f': a function cannot be written"),
        ("function(r) r.s = '\\xff\\xfe' end", "field 's': string is not valid UTF-8"),
        ("function(r) r.t = {1, 2, x = 3} end", "field 't': a table mixes list items and named fields"),
        ("function(r) r.t = {[1.5] = 1} end", "field 't': a table key is not a string"),
        ("function(r) r.c = coroutine.create(print) end", "field 'c': a thread cannot be written"),
        ("function(r) local t = {} for i = 1, 600 do t = { t } end r.deep = t end", "nested deeper than 512"),
        ("function(r) return 42 end", "process must return nil (pass), false (drop) or a record"),
        ("function(r) return {1, 2} end", "not a list"),
    ])
    func unwritableValues(_ fn: String, _ expected: String) async throws {
        let message = try await withLua { lua in
            do {
                _ = try roundTrip(lua, fn, #"{"a":{"b":1}}"#)
                return "no error"
            } catch let e as LuaError {
                return e.message
            }
        }
        #expect(message.contains(expected), "\(message)")
    }

    @Test("process results: nil passes, false drops, a table replaces; emits come first in order")
    func results() async throws {
        let (drop, emits) = try await withLua { lua in
            let (o, _) = try roundTrip(lua, "function(r, ctx) ctx.emit({n = 1}); ctx.emit({n = 2}); return false end", #"{"a":1}"#)
            return (o.result, o.emits.map(json))
        }
        #expect(drop == .drop)
        #expect(emits == [#"{"n":1}"#, #"{"n":2}"#])
    }

    @Test("ctx.emit refuses what is not a record, and the failed emit leaves no trace")
    func badEmit() async throws {
        let (message, emits) = try await withLua { lua in
            let (o, _) = try roundTrip(lua, """
                function(r, ctx)
                  local ok, err = pcall(ctx.emit, {1, 2})
                  local ok2, err2 = pcall(ctx.emit, {f = print})
                  r.err = err .. ' / ' .. err2
                  ctx.emit({fine = true})
                end
                """, #"{"a":1}"#)
            return (o.output.map(json) ?? "", o.emits.map(json))
        }
        #expect(message.contains("ctx.emit expects a record"))
        #expect(message.contains("emitted record: field 'f': a function"))
        #expect(emits == [#"{"fine":true}"#])
    }

    @Test("luapipe.json encodes and decodes with the same fidelity rules")
    func jsonModule() async throws {
        let out = try await withLua { lua in
            try roundTrip(lua, """
                function(r)
                  local v = luapipe.json.decode('{"i":1,"f":1.0,"n":null,"a":[],"o":{}}')
                  assert(math.type(v.i) == 'integer' and math.type(v.f) == 'float' and v.n == luapipe.null)
                  r.enc = luapipe.json.encode(v)
                  local ok, err = pcall(luapipe.json.decode, '{bad')
                  r.err = err
                end
                """, #"{}"#).1
        }
        // decode keeps the text's key order, so encode gives the text back
        #expect(out?.contains(#""enc":"{\"i\":1,\"f\":1.0,\"n\":null,\"a\":[],\"o\":{}}""#) == true, "\(out ?? "")")
        #expect(out?.contains("luapipe.json.decode: expected a string key") == true, "\(out ?? "")")
    }
}
