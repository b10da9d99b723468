import Foundation
import LuaPipeCore
@testable import LuaRuntime
import Testing

/// The sandbox's own versions of standard functions (lp_prelude.c, lp_stdlib.c) agree with
/// the system's Lua 5.4: each snippet runs in `lua5.4` and in a plugin, and the results and
/// error messages must be the same after the "chunk:line:" prefix.
@Suite("Standard functions agree with lua5.4")
struct ConformanceTests {
    /// Runs a snippet protected and renders what it returned or raised as one line.
    static func driver(_ snippet: String) -> String {
        """
        local f = assert(load(\(luaQuote(snippet)), "=snippet"))
        local r = table.pack(pcall(f))
        local out = {}
        for i = 1, r.n do out[#out + 1] = tostring(r[i]) end
        return (table.concat(out, " "):gsub("snippet:%d+: ", ""))
        """
    }

    static func luaQuote(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\""
    }

    static func systemLua(_ snippet: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["lua5.4", "-e", "io.write((function() " + driver(snippet) + " end)())"]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "lua5.4 is needed for this test (apt-get install lua5.4)")
        return String(decoding: data, as: UTF8.self)
    }

    static func plugin(_ snippet: String) async throws -> String {
        try await withLua { lua in
            let fn = try lua.load("return function() " + driver(snippet) + " end", chunkName: "=driver")
            defer { lua.release(fn) }
            let out = try lua.call(fn, mode: .value, passContext: false, timeout: .seconds(10))
            let text = try #require(out.output.map(json))
            // a JSON string: drop the quotes; the snippets print no quote nor backslash
            return String(text.dropFirst().dropLast())
        }
    }

    static let cases: [(String, String)] = [
        ("insert: __len returns a non-numeric string",
         "local t = setmetatable({}, {__len = function() return 'abc' end}) table.insert(t, 1)"),
        ("insert: __len returns a numeric string",
         "local t = setmetatable({}, {__len = function() return '10' end}) table.insert(t, 'v') return rawget(t, 11)"),
        ("insert: __len returns a float",
         "local t = setmetatable({}, {__len = function() return 2.5 end}) table.insert(t, 1)"),
        ("insert: position out of bounds", "table.insert({}, 5, 1)"),
        ("insert: position not an integer", "table.insert({}, 1.5, 1)"),
        ("insert: position not a number", "table.insert({}, 'x', 1)"),
        ("insert: wrong number of arguments", "table.insert({}, 1, 2, 3)"),
        ("insert: not a table", "table.insert(1, 2)"),
        ("insert: in the middle", "local t = {1, 2, 3} table.insert(t, 2, 'x') return table.concat(t, ',')"),
        ("move: destination wrap around", "table.move({}, 1, 2, math.maxinteger)"),
        ("move: too many elements, at once", "table.move({}, 0, math.maxinteger, 1)"),
        ("move: overlapping, both directions",
         "local t = {1, 2, 3, 4, 5} table.move(t, 1, 3, 2) local u = {1, 2, 3, 4, 5} table.move(u, 2, 5, 1) return table.concat(t, ',') .. ' ' .. table.concat(u, ',')"),
        ("move: from a string", "local t = table.move('abc', 1, 2, 1, {}) return #t"),
        ("remove: __len shorter than the table",
         "local t = setmetatable({1, 2, 3, 4, 5}, {__len = function() return 2 end}) local v = table.remove(t, 1) return v, t[1], t[2], t[3], t[4], t[5]"),
        ("remove: at size + 1 when __len is short, t[pos] is cleared",
         "local t = setmetatable({1, 2, 3, 4, 5}, {__len = function() return 2 end}) local v = table.remove(t, 3) return v, t[3], t[4]"),
        ("remove: position out of bounds", "table.remove({}, 5)"),
        ("remove: size + 1 and 0 on an empty table", "local t = {} return table.remove(t, 1), table.remove(t, 0), table.remove(t)"),
        ("remove: last", "local t = {1, 2, 3} return table.remove(t), #t"),
        ("load: a text chunk in mode b", "return load('return 1', 'x', 'b')"),
        ("load: an empty chunk in mode b", "return load('', 'x', 'b')"),
        ("load: a text chunk with an env", "local f = load('return x', 'x', 't', {x = 7}) return f()"),
        ("load: a reader function", "local parts = {'return ', '1 + ', '2'} local i = 0 return load(function() i = i + 1 return parts[i] end)()"),
        ("rep: separator, zero, negative, empty",
         "return ('ab'):rep(3, ','), ('x'):rep(0), ('x'):rep(-1), (''):rep(5, '-'), ('ab'):rep(1, ','), (''):rep(3), #('abc'):rep(1000, '--')"),
        ("rep: too large", "return ('x'):rep(math.maxinteger)"),
        ("concat: a bad value", "return table.concat({1, {}, 3})"),
        ("concat: range and separator", "return table.concat({1, 2, 3, 4}, '-', 2, 3), table.concat({}, 'x'), table.concat({'a'}, 'x', 3, 2)"),
        ("unpack: a range", "return table.unpack({1, 2, 3}, 2), select('#', table.unpack({}, 1, 3))"),
        ("unpack: too many results", "return table.unpack({}, 1, 1e8)"),
        ("sort: default order and a comparator",
         "local t = {5, 2, 8, 1, 9, 3} table.sort(t) local u = {5, 2, 8, 1} table.sort(u, function(a, b) return a > b end) return table.concat(t, ','), table.concat(u, ',')"),
        ("sort: invalid order function", "local t = {} for i = 1, 100 do t[i] = i % 3 end table.sort(t, function() return true end)"),
        ("sort: a comparator that is not a function", "table.sort({3, 2, 1}, 5)"),
        ("os.date: a long format cut into pieces gives the same text",
         "local f = ('%Y-%m-%d %H:%M:%S %% %Ey|'):rep(900) .. '*t' return os.date('!' .. f, 86400 * 365 + 7), os.date('!%Y', 0), os.date('!*t', 3600).hour, pcall(os.date, ('%Q'):rep(3000))"),
        ("string order is byte order, whatever the process's locale",
         "return 'a' < 'B', 'Z' < 'a', '\\195\\169' < 'z', 'abc' < 'abd', 'x\\0a' < 'x\\0b'"),
        ("find: plain and no specials", "local s = ('ab'):rep(1000) .. 'abc' return s:find('abc', 1, true), s:find('abc'), s:find('bab', 3, true)"),
    ]

    @Test("a snippet gives the same result in a plugin as in lua5.4", arguments: cases)
    func same(_ c: (String, String)) async throws {
        let expected = try Self.systemLua(c.1)
        let got = try await Self.plugin(c.1)
        #expect(got == expected, "\(c.0): lua5.4 says \(expected)")
    }
}
