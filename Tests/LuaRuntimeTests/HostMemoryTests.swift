import Foundation
import LuaPipeCore
@testable import LuaRuntime
import Testing

/// What a call hands to the host (its result, emits, ctx.shared values, luapipe.json output,
/// host-function arguments, log lines) counts against memory_mb as it is built.
///
/// Where memory is the point, the case runs in a child `luapipe` (LUAPIPE_BIN, or the debug
/// build) whose RSS the test samples from /proc and kills at twice its bound: a regression
/// fails the test instead of exhausting the machine. The rest runs in-process under limits
/// small enough that a regression cannot hurt.
@Suite("Host memory")
struct HostMemoryTests {
    static let fixtures = fixturePath("hostmem")

    // MARK: In a child process

    @Test("a DAG of shared tables stops at memory_mb, however it is handed over",
          arguments: ["return", "encode", "shared", "emit"])
    func dag(_ mode: String) async throws {
        // 64 MB for Lua and the host's buffers, the result copied once more, the process itself.
        let run = try await ChildRun.offPool(plugin: "dag", config: "{ mode: \(mode) }", memoryMB: 64, bound: 256 << 20)
        #expect(!run.killed, "RSS passed \(run.killAt >> 20) MiB: peak \(run.peak >> 20) MiB")
        #expect(run.stderr.contains("would take the plugin past its memory limit (memory_mb)"), "\(run.stderr.prefix(600))")
        #expect(run.peak < run.bound, "peak \(run.peak >> 20) MiB")
    }

    @Test("luapipe.json.decode stops at memory_mb as it builds the decoded value")
    func decodeBounded() async throws {
        // 48 MB of "1," is 216 MB of tape; the text and its copy fit in 256 MB, the tape does not.
        let run = try await ChildRun.offPool(plugin: "decode", config: "{ items: 25000000 }", memoryMB: 256, bound: 640 << 20)
        #expect(!run.killed, "RSS passed \(run.killAt >> 20) MiB: peak \(run.peak >> 20) MiB")
        #expect(run.stderr.contains("luapipe.json.decode's value"), "\(run.stderr.prefix(600))")
        #expect(run.stderr.contains("would take the plugin past its memory limit (memory_mb)"))
    }

    @Test("a full ctx.shared of small keys takes about what it counts")
    func sharedStoreFull() async throws {
        // The store's limit is 256 MiB; its real memory may be 1.5x that, plus the process.
        let run = try await ChildRun.offPool(plugin: "shared_fill", config: "{ keys: 8000000 }", memoryMB: 256,
                                             bound: 384 << 20 + 64 << 20, timeoutSeconds: 300)
        #expect(!run.killed, "RSS passed \(run.killAt >> 20) MiB: peak \(run.peak >> 20) MiB")
        #expect(run.stdout.contains(#""full":true"#), "\(run.stdout.prefix(300)) \(run.stderr.prefix(300))")
        #expect(run.peak < run.bound, "peak \(run.peak >> 20) MiB")
    }

    // MARK: In-process

    @Test("each way to hand a DAG over ends in the memory error and marks a memory breach",
          arguments: ["dag_return", "dag_encode", "dag_shared", "dag_emit", "dag_argument"])
    func dagInProcess(_ name: String) async throws {
        let error = try await withLua(.init(memoryLimit: 32 << 20)) { lua -> LuaError? in
            do {
                _ = try Self.call(lua, name)
                return nil
            } catch let e as LuaError {
                return e
            }
        }
        let e = try #require(error, "\(name) ended without an error")
        #expect(e.code == .memory, "\(e.code): \(e.message)")
        #expect(e.brokeLimit)
        #expect(e.message.contains("not enough memory: "), "\(e.message)")
        #expect(e.message.contains("would take the plugin past its memory limit (memory_mb)"), "\(e.message)")
    }

    @Test("a large decode or encode that fits does not keep its buffers, nor their count",
          arguments: ["decode_large", "encode_large"])
    func scratchGivenBack(_ name: String) async throws {
        let (before, after) = try await withLua(.init(memoryLimit: 128 << 20)) { lua in
            _ = try Self.call(lua, "dag_return", limit: false)  // warm up: the scratch exists
            _ = try Self.call(lua, "collect")
            let before = lua.memoryUsed
            _ = try Self.call(lua, name)
            _ = try Self.call(lua, "collect")
            return (before, lua.memoryUsed)
        }
        // The call built 15-18 MB of tape and text; buffers past 1 MiB are freed after the
        // call, and their count with them (kept, they would count against the next calls).
        #expect(after < before + (3 << 20), "memory used went from \(before >> 10) KiB to \(after >> 10) KiB")
    }

    @Test("a log line is cut at 64 KiB, at a character boundary, saying how much more there was")
    func logLinesCapped() async throws {
        let lines = Locked<[String]>([])
        let host = LuaHost(shared: SharedStore()) { _, message in lines.withLock { $0.append(message) } }
        _ = try await withLua(.init(memoryLimit: 64 << 20), host: host) { lua in try Self.call(lua, "log_long") }
        let got = lines.withLock { $0 }
        #expect(got.count == 2)
        let first = try #require(got.first)
        #expect(first.utf8.count <= LuaHost.maxLogLine + 40)
        #expect(first.hasSuffix("… (\((1 << 20) - LuaHost.maxLogLine) bytes more)"), "\(first.suffix(60))")
        let second = try #require(got.last)
        #expect(second.utf8.count <= LuaHost.maxLogLine + 40)
        #expect(!second.contains("\u{FFFD}"), "cut inside a character")
        #expect(second.hasPrefix("éé"))
        #expect(second.hasSuffix("bytes more)"))
    }

    /// Calls the fixture function `name` as process, with a 10 s deadline.
    static func call(_ lua: LuaState, _ name: String, limit: Bool = true) throws -> LuaState.Outcome {
        let cases = try lua.load(file: fixtures + "/in_process.lua")
        defer { lua.release(cases) }
        let fn = lua.refField(cases, name)!
        defer { lua.release(fn) }
        do {
            return try lua.call(fn, arg: try JSONReader.parseRecord(#"{"a":1}"#), mode: .record, allowEmit: true,
                                timeout: .seconds(10))
        } catch let e as LuaError where !limit && e.code == .memory {
            return LuaState.Outcome(result: .none, output: nil, emits: [])
        }
    }
}

/// A `luapipe run` of one fixture plugin over one record, its RSS sampled from /proc every
/// 10 ms; killed when it passes twice `bound` (or runs past the timeout).
struct ChildRun {
    var status: Int32 = 0
    var stdout = ""
    var stderr = ""
    var peak = 0      // the highest VmHWM seen, bytes
    var killed = false
    let bound: Int
    var killAt: Int { 2 * bound }

    static var binary: String {
        if let p = ProcessInfo.processInfo.environment["LUAPIPE_BIN"], !p.isEmpty { return p }
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
            + "/.build/debug/luapipe"
    }

    /// Runs the child from a thread of its own: the test waits seconds for it, and must not
    /// hold one of the cooperative pool's threads (2 on a 2-core machine) that other tests need.
    static func offPool(plugin: String, config: String, memoryMB: Int, bound: Int,
                        timeoutSeconds: Double = 120) async throws -> ChildRun {
        let worker = WorkerThread(name: "child-run")
        defer { worker.shutdown() }
        return try await worker.run {
            try ChildRun(plugin: plugin, config: config, memoryMB: memoryMB, bound: bound, timeoutSeconds: timeoutSeconds)
        }
    }

    init(plugin: String, config: String, memoryMB: Int, bound: Int, timeoutSeconds: Double = 120) throws {
        self.bound = bound
        let dir = NSTemporaryDirectory() + "luapipe-hostmem-\(getpid())-\(plugin)-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let manifest = """
            api: 1
            plugin_paths: [\(HostMemoryTests.fixtures)]
            plugins:
              - use: \(plugin)
                config: \(config)
                memory_mb: \(memoryMB)
                timeout_ms: \(Int(timeoutSeconds * 1000))
                on_error: drop

            """
        try manifest.write(toFile: dir + "/m.yaml", atomically: true, encoding: .utf8)
        try "{\"a\":1}\n".write(toFile: dir + "/in.jsonl", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["run", dir + "/m.yaml", "--input", dir + "/in.jsonl", "--output", dir + "/out.jsonl"]
        let errPath = dir + "/err.txt"
        FileManager.default.createFile(atPath: errPath, contents: nil)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        try p.run()
        let deadline = Date().addingTimeInterval(timeoutSeconds + 30)
        while p.isRunning {
            if let hwm = Self.vmHWM(p.processIdentifier) { peak = max(peak, hwm) }
            if peak > killAt || Date() > deadline {
                killed = true
                kill(p.processIdentifier, SIGKILL)
                break
            }
            usleep(10_000)
        }
        p.waitUntilExit()
        status = p.terminationStatus
        stdout = (try? String(contentsOfFile: dir + "/out.jsonl", encoding: .utf8)) ?? ""
        stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
    }

    /// VmHWM (the peak resident set so far) of a running process, in bytes.
    static func vmHWM(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
            return kb.map { $0 << 10 }
        }
        return nil
    }
}
