import Foundation
import Testing

@Suite("Plugin isolation, end to end", .serialized)
struct IsolationTests {
    @Test("runaway loops (plain, in pcall, in a coroutine) cost their timeout and the run completes")
    func timeouts() async throws {
        let stats = Binary.temp("runaway-stats.json")
        let input = ["{\"n\":1}", "{\"n\":2,\"mode\":\"loop\"}", "{\"n\":3,\"mode\":\"pcall\"}",
                     "{\"n\":4,\"mode\":\"coroutine\"}", "{\"n\":5}"].joined(separator: "\n") + "\n"
        let r = try await Binary.runOffPool(["run", "runaway.yaml", "--stats-json", stats], input: input)
        #expect(r.status == 0, "\(r.stderr)")
        // skip: the failing records pass unchanged; a fresh instance (setup again) takes the next.
        #expect(r.lines == [#"{"n":1,"setups":1}"#, #"{"n":2,"mode":"loop"}"#, #"{"n":3,"mode":"pcall"}"#,
                            #"{"n":4,"mode":"coroutine"}"#, #"{"n":5,"setups":4}"#])
        let s = try Binary.stats(stats)
        let p = (s["plugins"] as? [[String: Any]])?.first ?? [:]
        #expect(p["timeouts"] as? Int == 3 && p["errors"] as? Int == 3, "\(p)")
        #expect(Binary.balanced(s))
    }

    @Test("a memory bomb under memory_mb: 32 is stopped, the instance replaced, and peak RSS stays in the tens of MB")
    func memoryBomb() async throws {
        let input = "{\"n\":1,\"mode\":\"bomb\"}\n{\"n\":2}\n"
        let script = """
        import resource, subprocess, sys
        p = subprocess.run([sys.argv[1], "run", "bomb.yaml"], input=sys.argv[2].encode(), capture_output=True)
        sys.stdout.write(p.stdout.decode())
        print("status", p.returncode)
        print("maxrss_kb", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        sys.stderr.write(p.stderr.decode())
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, Binary.path, input]
        p.currentDirectoryURL = URL(fileURLWithPath: Binary.fixtures)
        let out = Pipe()
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = out
        p.standardError = out
        let o = Collector(out.fileHandleForReading)
        try p.run()
        p.waitUntilExit()
        let text = o.text()
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains(#"{"n":1,"mode":"bomb"}"#), "\(text)")
        #expect(lines.contains(#"{"n":2,"setups":2}"#), "\(lines)")
        #expect(lines.contains("status 0"))
        let rss = lines.first { $0.hasPrefix("maxrss_kb ") }.flatMap { Int($0.dropFirst(10)) } ?? Int.max
        #expect(rss < 100_000, "peak RSS \(rss) KB")
        #expect(text.contains("not enough memory"), "\(text)")
    }

    @Test("a record is transactional: skip and dead-letter see it as it was, and its emits are discarded")
    func transactional() async throws {
        let half = "{\"n\":1,\"name\":\"keep\",\"mode\":\"half\"}\n"
        let skipped = try await Binary.runOffPool(["run", "runaway.yaml"], input: half)
        #expect(skipped.lines == [#"{"n":1,"name":"keep","mode":"half"}"#], "\(skipped.stdout)")
        let dl = Binary.temp("half-rejects.jsonl")
        let dir = Binary.temp("half")
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "api: 1\nplugin_paths: [\(Binary.fixtures)/plugins]\nplugins:\n  - use: runaway\n    on_error: dead-letter\n"
            .write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let dead = try await Binary.runOffPool(["run", dir + "/p.yaml", "--dead-letter", dl], input: half)
        #expect(dead.status == 0 && dead.lines.isEmpty, "\(dead.stdout) \(dead.stderr)")
        let envelope = try String(contentsOfFile: dl, encoding: .utf8)
        #expect(envelope.hasPrefix(#"{"record":{"n":1,"name":"keep","mode":"half"},"plugin":"runaway","error":""#), "\(envelope)")
        #expect(envelope.contains("runaway.lua:20: failed after changing the record"))
        #expect(envelope.hasSuffix("\"record_number\":1}\n"))
    }
}
