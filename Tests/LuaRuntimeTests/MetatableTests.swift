import LuaPipeCore
@testable import LuaRuntime
import Testing

/// The guard against weak tables (lp_prelude.c) keeps metatables working as in Lua: classes,
/// inheritance, metamethods of a class's own metatable, protected metatables.
@Suite("Metatables under the weak-table guard")
struct MetatableTests {
    static func value(_ body: String) async throws -> String {
        try await withLua { lua in
            let fn = try lua.load("return function() " + body + " end", chunkName: "=mt")
            defer { lua.release(fn) }
            let out = try lua.call(fn, mode: .value, passContext: false, timeout: .seconds(5))
            return try #require(out.output.map(json))
        }
    }

    @Test("classes with inheritance, constructors and metamethods work as in Lua")
    func inheritance() async throws {
        let out = try await Self.value("""
            local Base = {} Base.__index = Base
            function Base.new(x) return setmetatable({ x = x }, Base) end
            function Base:get() return self.x end
            Base.__tostring = function(o) return 'Base(' .. o.x .. ')' end
            Base.__eq = function(a, b) return a.x == b.x end
            Base.__lt = function(a, b) return a.x < b.x end
            Base.__len = function(o) return o.x end
            local Derived = setmetatable({}, { __index = Base, __call = function(cls, x) return setmetatable({ x = x * 2 }, cls) end })
            Derived.__index = Derived
            Derived.__tostring = Base.__tostring
            function Derived:twice() return self:get() * 2 end
            local d = Derived(3)
            local b1, b2 = Base.new(1), Base.new(1)
            local parts = {
              d:get(), d:twice(), tostring(d), tostring(b1), tostring(b1 == b2), tostring(b1 < Base.new(2)), #b1,
              tostring(getmetatable(d) == Derived), tostring(getmetatable(Derived).__index == Base),
              tostring(rawget(Derived, 'twice') ~= nil),
            }
            -- methods added to the base after the fact are seen through the chain
            function Base:later() return 'later' end
            parts[#parts + 1] = d:later()
            -- a class's own metatable gets new metamethods later
            getmetatable(Derived).__len = function() return 99 end
            parts[#parts + 1] = #Derived
            return table.concat(parts, ' ')
            """)
        #expect(out == #""6 12 Base(6) Base(1) true true 1 true true true later 99""#)
    }

    @Test("protected metatables stay protected, and getmetatable sees what Lua shows")
    func protected() async throws {
        let out = try await Self.value("""
            local mt = setmetatable({}, { __metatable = 'locked' })
            local obj = setmetatable({}, mt)
            local ok, err = pcall(setmetatable, mt, {})
            local plain = {}
            local o2 = setmetatable({}, plain)
            return table.concat({ tostring(getmetatable(mt)), tostring(ok), err, tostring(getmetatable(plain)), tostring(getmetatable(o2) == plain) }, ' ')
            """)
        #expect(out == #""locked false cannot change a protected metatable nil true""#)
    }

    @Test("a metatable may be changed and reused; fields added later take effect")
    func reuse() async throws {
        let out = try await Self.value("""
            local mt = {}
            local a = setmetatable({}, mt)
            mt.__index = function(t, k) return k .. '!' end
            local b = setmetatable({}, mt)
            setmetatable(mt, { __index = { extra = 'e' } })
            setmetatable(mt, nil)
            mt.new_field = 1
            return a.x .. b.y .. tostring(rawget(mt, 'new_field')) .. tostring(mt.extra)
            """)
        #expect(out == #""x!y!1nil""#)
    }

    @Test("getmetatable of a string stays false: the string metatable is protected on purpose")
    func stringMetatable() async throws {
        #expect(try await Self.value("return tostring(getmetatable(''))") == #""false""#)
    }
}
