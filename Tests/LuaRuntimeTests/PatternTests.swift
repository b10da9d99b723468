import LuaPipeCore
@testable import LuaRuntime
import Testing

@Suite("Lua patterns with a deadline")
struct PatternTests {
    @Test("the sandbox's matcher gives what the system's lua5.4 gives, case for case")
    func sameAsLua() async throws {
        let got = try await withLua { lua -> String in
            let fn = try lua.load(file: fixturePath("patterns/cases.lua"))
            let out = try lua.call(fn, mode: .value, passContext: false, timeout: .seconds(60))
            return out.output.map { $0.value().stringValue ?? "" } ?? ""
        }
        let expected = String(decoding: LuaState.readFile(fixturePath("patterns/expected.txt")) ?? [], as: UTF8.self)
        let g = got.split(separator: "\n", omittingEmptySubsequences: false)
        let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(g.count == e.count)
        let differing = zip(g, e).enumerated().filter { $0.element.0 != $0.element.1 }
        for (i, (a, b)) in differing.prefix(5) {
            Issue.record("case line \(i + 1): got \(a), lua5.4 gave \(b)")
        }
    }

    @Test("a pattern that backtracks for ever is stopped by the deadline", arguments: [
        #"return function() return ("a"):rep(40):match(("a?"):rep(40) .. ("a"):rep(40)) end"#,
        #"return function() return ("a"):rep(200000):find(".-b") end"#,
        #"return function() return ("a"):rep(60):gsub(("a*"):rep(12) .. "b", "x") end"#,
        #"return function() for x in ("a"):rep(100000):gmatch("a-b") do end end"#,
    ])
    func backtrackingStops(_ code: String) async throws {
        let started = ContinuousClock.now
        let code2 = try await withLua { lua -> LuaError.Code? in
            let fn = try lua.load(code, chunkName: "=pattern")
            do { _ = try lua.call(fn, timeout: .milliseconds(200)) } catch let e as LuaError { return e.code }
            return nil
        }
        #expect(code2 == .timeout)
        #expect(ContinuousClock.now - started < .seconds(60))  // a hang detector: without the deadline this runs for hours
    }
}
