import LuaPipeCore
@testable import LuaRuntime
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The deadline holds inside C functions: every call ends by its deadline plus a second of
/// grace, whatever standard function it is in (SECURITY.md, "Limits"). The plugin is the
/// attack suite's `atk`: `timeout_ms: 200`, `memory_mb: 64`. Each body is set up by a chunk
/// that runs without a deadline, then called with 200 ms; the bound on the whole test is
/// generous for a loaded machine, while the system library's C loops run for many seconds.
@Suite("Deadlines inside C functions", .serialized)
struct DeadlineTests {
    static let options = LuaState.Options(memoryLimit: 64 << 20)

    /// Runs `setup` (a chunk returning the function to call) without a deadline, then calls
    /// the function with `timeout`; returns the error and how long the call took.
    static func run(_ setup: String, timeout: Duration = .milliseconds(200),
                    options: LuaState.Options = options) async throws -> (LuaError?, Duration) {
        try await withLua(options) { lua in
            let fn = try lua.load(setup, chunkName: "=atk")
            defer { lua.release(fn) }
            let started = ContinuousClock.now
            do {
                _ = try lua.call(fn, timeout: timeout)
                return (nil, ContinuousClock.now - started)
            } catch let e as LuaError {
                return (e, ContinuousClock.now - started)
            }
        }
    }

    /// Generous for a machine loaded by the whole suite; the system library's loops here run
    /// 20 s or more.
    static let grace: Duration = .seconds(10)

    @Test("a sort of millions of numbers with the default order stops inside the sort")
    func sortDefaultOrder() async throws {
        // 2M numbers (32 MB) sort in about a second in C, with no instruction to run a hook.
        let (e, took) = try await Self.run("""
            local t = {}
            for i = 1, 2000000 do t[i] = (i * 7919) % 1000003 end
            return function() table.sort(t) end
            """)
        #expect(e?.code == .timeout, "\(String(describing: e))")
        // Stopped inside the sort, not failed once it returned.
        #expect(e?.message.contains("returned after its deadline") == false, "\(String(describing: e))")
        #expect(took < Self.grace, "the sort went on for \(took)")
    }

    @Test("a sort with a C comparator and a C __index stops at the deadline")
    func sortCComparator() async throws {
        let (e, took) = try await Self.run("""
            local proxy = setmetatable({}, { __len = function() return 1 << 26 end, __index = type })
            return function() table.sort(proxy, rawequal) end
            """)
        #expect(e?.code == .timeout, "\(String(describing: e))")
        #expect(took < Self.grace)
    }

    @Test("C calls of 60 ms each, 300 of them between two count hooks, stop at the deadline")
    func expensiveCCallsBetweenHooks() async throws {
        // Each utf8.len(s) reads 15 MB in C (~60 ms); the loop runs three VM instructions per
        // call, so the count hook alone would look at the clock after ~330 of them (~20 s).
        let (e, took) = try await Self.run("""
            local s = ("x"):rep(15e6)
            return function() while true do local n = utf8.len(s) end end
            """)
        #expect(e?.code == .timeout, "\(String(describing: e))")
        #expect(took < Self.grace, "took \(took)")
    }

    @Test("a loop of `..` over a long string, no call and no hook in reach, stops at the deadline")
    func concatInstructions() async throws {
        // Each `..` copies 15 MB inside one VM instruction; 1000 of them between two count
        // hooks ran 18 s. After the deadline a large allocation fails, and only a (checked)
        // library function could catch that.
        for body in ["while true do local u = s .. 'y' end",
                     "while true do pcall(function() local u = s .. 'y' end) end"] {
            let (e, took) = try await Self.run("""
                local s = ("x"):rep(15e6)
                return function() \(body) end
                """)
            #expect(e?.code == .timeout, "\(body): \(String(describing: e))")
            #expect(e?.message.contains("timeout: the call ran past its time limit") == true, "\(String(describing: e))")
            #expect(took < Self.grace, "\(body): took \(took)")
        }
    }

    @Test("a call that returns after its deadline fails as a timeout")
    func lateReturnIsTimeout() async throws {
        // One C call (utf8.len over 100 MB, ~0.1 s) longer than the whole deadline, then the
        // function returns: no hook and no other call comes in between, yet the call must
        // not pass as a success.
        let (e, _) = try await Self.run("""
            local s = ("x"):rep(100e6)
            return function() return utf8.len(s) end
            """, timeout: .milliseconds(20), options: .init(memoryLimit: 512 << 20))
        #expect(e?.code == .timeout, "\(String(describing: e))")
        #expect(e?.message.contains("returned after its deadline") == true, "\(String(describing: e))")
        #expect(e?.brokeLimit == true)
    }

    @Test("a timeout raised inside a C loop cannot be swallowed by pcall")
    func cTimeoutNotSwallowed() async throws {
        let (e, took) = try await Self.run("""
            local proxy = setmetatable({}, { __index = table.concat })
            return function()
              while true do pcall(table.concat, proxy, "", 1, math.maxinteger) end
            end
            """)
        #expect(e?.code == .timeout, "\(String(describing: e))")
        #expect(took < Self.grace)
    }

    @Test("the interrupt flag stops a C loop that no hook reaches")
    func interruptInCLoop() async throws {
        let code = try await withLua(Self.options) { lua -> LuaError.Code? in
            let fn = try lua.load("""
                return function() return table.concat(setmetatable({}, { __index = table.concat }), "", 1, math.maxinteger) end
                """, chunkName: "=atk")
            let stop = lua.interrupt
            Thread_detach { usleep(100_000); stop() }
            do { _ = try lua.call(fn) } catch let error as LuaError { return error.code }
            return nil
        }
        #expect(code == .interrupted)
    }

    /// Instructions that each take milliseconds, a thousand of them between two count hooks:
    /// the watchdog arms the hook for the next instruction once the call is late.
    @Test("one long VM instruction after another stops at the deadline",
          arguments: ["string_arith", "string_compare", "string_compare_nul"])
    func longInstructions(fixture: String) async throws {
        let setup = try String(contentsOfFile: fixturePath("deadline") + "/\(fixture).lua", encoding: .utf8)
        let (e, took) = try await Self.run(setup, options: .init(memoryLimit: 256 << 20))
        #expect(e?.code == .timeout, "\(String(describing: e))")
        // Stopped between two instructions, not failed once it returned.
        #expect(e?.message.contains("returned after its deadline") == false, "\(String(describing: e))")
        #expect(took < Self.grace, "\(fixture): took \(took)")
    }

    @Test("a DAG expanding into a hand-over stops at the deadline, not at memory_mb")
    func dagExpansion() async throws {
        let setup = try String(contentsOfFile: fixturePath("deadline") + "/dag_encode.lua", encoding: .utf8)
        let (e, took) = try await Self.run(setup, options: .init(memoryLimit: 512 << 20))
        #expect(e?.code == .timeout, "\(String(describing: e))")
        #expect(took < Self.grace, "took \(took)")
    }

    @Test("the interrupt flag stops a run of long VM instructions")
    func interruptLongInstructions() async throws {
        let setup = try String(contentsOfFile: fixturePath("deadline") + "/string_arith.lua", encoding: .utf8)
        let (code, took) = try await withLua(.init(memoryLimit: 256 << 20)) { lua -> (LuaError.Code?, Duration) in
            let fn = try lua.load(setup, chunkName: "=atk")
            defer { lua.release(fn) }
            let stop = lua.interrupt
            let started = ContinuousClock.now
            Thread_detach { usleep(300_000); stop() }
            do { _ = try lua.call(fn, timeout: .seconds(120)) } catch let error as LuaError {
                return (error.code, ContinuousClock.now - started)
            }
            return (nil, ContinuousClock.now - started)
        }
        #expect(code == .interrupted)
        #expect(took < Self.grace, "took \(took)")
    }

    @Test("os.execute (granted) answers as Lua's does, and a command that outlives the call is killed at the deadline")
    func osExecute() async throws {
        let options = LuaState.Options(memoryLimit: 64 << 20, allowOS: true)
        let answers = try await withLua(options) { lua -> String? in
            let fn = try lua.load(file: fixturePath("os") + "/execute.lua", timeout: .seconds(5))
            defer { lua.release(fn) }
            return try lua.call(fn, mode: .value, passContext: false, timeout: .seconds(5)).output.map(json)
        }
        #expect(answers == #""true exit 0, nil exit 3, nil signal 9, true exit 0, true""#)
        let setup = try String(contentsOfFile: fixturePath("os") + "/execute_sleep.lua", encoding: .utf8)
        let (e, took) = try await Self.run(setup, options: options)
        #expect(e?.code == .timeout, "\(String(describing: e))")
        #expect(took < Self.grace, "took \(took)")  // system(3) waited the whole 30 s
    }

    @Test("parsing a large chunk with load is under the deadline")
    func loadParsesUnderDeadline() async throws {
        // 4 MB of source parsed in pieces; a parse that outlives the deadline fails it.
        let (e, took) = try await Self.run("""
            local src = ("a = 1 + 2 * 3 "):rep(200000)
            return function() while true do load(src) end end
            """)
        #expect(e?.code == .timeout, "\(String(describing: e))")
        #expect(took < Self.grace)
    }
}
