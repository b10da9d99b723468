import Foundation
import Testing

/// `shared: redis://HOST:PORT/PREFIX`: ctx.shared in Redis, shared by every luapipe process
/// (docs/reference.md, "Shared state in Redis"), end to end through the binary. Each test
/// starts its own redis-server on a free loopback port.
@Suite("ctx.shared in Redis, end to end", .serialized)
struct SharedRedisTests {
    /// A manifest with `shared` (when given) and one entry.
    static func manifest(_ name: String, shared: String?, _ entry: String) throws -> String {
        let path = Binary.temp("shared-\(name).yaml")
        let top = shared.map { "shared: \($0)\n" } ?? ""
        try "api: 1\n\(top)plugin_paths: [\(Binary.fixtures)/plugins]\ndead_letter: \(Binary.temp("shared-\(name)-dl.jsonl"))\nplugins:\n\(entry)"
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Three luapipe processes at once, 10,000 records each, one `ctx.shared:incr("n", 1)` per
    /// record: what Redis holds under PREFIX:n, and each process's flush ({"total": N}).
    static func threeCounters(_ redis: RedisServer, shared: Bool) async throws -> (stored: String, totals: [Int]) {
        let m = try manifest("count-\(shared)", shared: shared ? redis.url("count") : nil, "  - use: shared_count\n")
        let input = Binary.temp("shared-count-in.jsonl")
        try Binary.records(10_000).write(toFile: input, atomically: true, encoding: .utf8)
        let runs = try (1...3).map { i in
            try Background(["run", m, "--input", input, "--output", Binary.temp("shared-count-\(shared)-\(i).jsonl")])
        }
        let results = try await Binary.offPool { runs.map { $0.wait(timeout: 300) } }
        for r in results { #expect(r.status == 0, "\(r.stderr)") }
        var totals: [Int] = []
        for i in 1...3 {
            let out = lines(Binary.temp("shared-count-\(shared)-\(i).jsonl"))
            #expect(out.count == 10_001, "process \(i) wrote \(out.count) lines")
            if let last = out.last, last.hasPrefix("{\"total\":") { totals.append(Int(last.dropFirst(9).dropLast()) ?? -1) }
        }
        return (try redis.cli(["GET", "count:n"]), totals)
    }

    @Test("3 processes x 10,000 records, each an incr: exactly 30,000 in Redis under PREFIX:n")
    func threeProcesses() async throws {
        let redis = try RedisServer()
        let (stored, totals) = try await Self.threeCounters(redis, shared: true)
        #expect(stored == "30000")
        // The process that flushed last did so after the other two had counted everything.
        #expect(totals.count == 3 && totals.max() == 30_000, "\(totals)")
    }

    @Test("the same 3 processes with the in-process store: each counts only its own 10,000, nothing in Redis")
    func threeProcessesInProcess() async throws {
        let redis = try RedisServer()
        let (stored, totals) = try await Self.threeCounters(redis, shared: false)
        #expect(stored == "")
        #expect(totals == [10_000, 10_000, 10_000], "\(totals)")
        #expect(stored != "30000", "the check of threeProcesses tells the stores apart")
    }

    @Test("get, set, delete and keys round-trip JSON values; keys are PREFIX:key in Redis, values their JSON text")
    func roundTrip() async throws {
        let redis = try RedisServer()
        try redis.cli(["SET", "other:x", "1"])  // another prefix: not among the keys
        let m = try Self.manifest("ops", shared: redis.url("app"), "  - use: shared_ops\n    concurrency: 1\n")
        let input = [
            #"{"op":"set","key":"nested","value":{"a":[1,2.5,{"b":true}],"s":"x","z":null,"e":[]}}"#,
            #"{"op":"set","key":"s","value":"héllo \"q\""}"#,
            #"{"op":"set","key":"n","value":42}"#,
            #"{"op":"set","key":"f","value":1.5}"#,
            #"{"op":"set","key":"b","value":false}"#,
            #"{"op":"get","key":"nested"}"#, #"{"op":"get","key":"s"}"#, #"{"op":"get","key":"n"}"#,
            #"{"op":"get","key":"f"}"#, #"{"op":"get","key":"b"}"#,
            #"{"op":"incr","key":"n","by":8}"#, #"{"op":"incr","key":"new"}"#, #"{"op":"incr","key":"s","by":1}"#,
            #"{"op":"keys"}"#,
            #"{"op":"delete","key":"nested"}"#, #"{"op":"get","key":"nested"}"#, #"{"op":"keys"}"#,
            #"{"op":"bad_key"}"#, #"{"op":"gsub"}"#, #"{"op":"set_function"}"#,
        ]
        let r = try await Binary.runOffPool(["run", m], input: input.joined(separator: "\n") + "\n")
        #expect(r.status == 0, "\(r.stderr)")
        let out = r.lines
        #expect(out.count == input.count, "\(r.stdout)\n\(r.stderr)")
        guard out.count == input.count else { return }
        #expect(out[5] == #"{"op":"get","key":"nested","got":{"a":[1,2.5,{"b":true}],"s":"x","z":null,"e":[]}}"#)
        #expect(out[6] == #"{"op":"get","key":"s","got":"héllo \"q\""}"#)
        #expect(out[7] == #"{"op":"get","key":"n","got":42}"#)
        #expect(out[8] == #"{"op":"get","key":"f","got":1.5}"#)
        #expect(out[9] == #"{"op":"get","key":"b","got":false}"#)
        #expect(out[10] == #"{"op":"incr","key":"n","by":8,"got":50,"ok":true}"#)
        #expect(out[11] == #"{"op":"incr","key":"new","got":1,"ok":true}"#)
        #expect(out[12].contains(#""ok":false"#) && out[12].contains("ctx.shared:incr: the value of 's' is not an integer"), "\(out[12])")
        #expect(out[13] == #"{"op":"keys","got":["b","f","n","nested","new","s"]}"#)
        #expect(out[15] == #"{"op":"get","key":"nested","missing":true}"#)
        #expect(out[16] == #"{"op":"keys","got":["b","f","n","new","s"]}"#)
        #expect(out[17].contains("bad argument #1 to 'get' (string expected, got number)"), "\(out[17])")
        #expect(out[18].contains("ctx.shared:get cannot wait here: it was called from inside 'gsub'"), "\(out[18])")
        #expect(out[19].contains("bad argument #2 to 'set': a function cannot be written as JSON"), "\(out[19])")
        // In Redis: PREFIX:key, the value's JSON text.
        #expect(try redis.cli(["GET", "app:s"]) == #""héllo \"q\"""#)
        #expect(try redis.cli(["GET", "app:n"]) == "50")
        #expect(try redis.cli(["GET", "app:b"]) == "false")
        #expect(try redis.cli(["EXISTS", "app:nested"]) == "0")
    }

    @Test("a value read from Redis counts against --host-memory-mb while it is on its way into the plugin")
    func hostBudget() async throws {
        let redis = try RedisServer()
        let m = try Self.manifest("budget", shared: redis.url("mem"), "  - use: shared_ops\n    concurrency: 1\n    on_error: dead-letter\n")
        let input = #"{"op":"set_big","key":"big","size":5000000}"# + "\n" + #"{"op":"get_len","key":"big"}"# + "\n"
        // 5 MB of JSON text counts 20 MB: past a budget of 16 MiB, within one of 64.
        let small = try await Binary.runOffPool(["run", m, "--host-memory-mb", "16"], input: input)
        #expect(small.status == 0, "\(small.stderr)")
        let dead = Self.lines(Binary.temp("shared-budget-dl.jsonl"))
        #expect(dead.count == 1 && dead[0].contains("ctx.shared:get: not enough host memory for a value read from Redis"), "\(dead)")
        let large = try await Binary.runOffPool(["run", m, "--host-memory-mb", "64"], input: input)
        #expect(large.status == 0, "\(large.stderr)")
        #expect(large.lines.last == #"{"op":"get_len","key":"big","got":5000000}"#)
    }

    @Test("Redis killed mid-run: the records after fail under on_error with a clear message, and the run ends")
    func redisKilled() async throws {
        let redis = try RedisServer()
        let m = try Self.manifest("killed", shared: redis.url("k"),
                                  "  - use: shared_count\n    config: { seconds: 0.005 }\n    concurrency: 4\n    timeout_ms: 2000\n    on_error: dead-letter\n")
        let input = Binary.temp("shared-killed-in.jsonl"), output = Binary.temp("shared-killed-out.jsonl")
        try Binary.records(2000).write(toFile: input, atomically: true, encoding: .utf8)
        let stats = Binary.temp("shared-killed-stats.json")
        let c = try Background(["run", m, "--input", input, "--output", output, "--batch-size", "16", "--stats-json", stats])
        let r = try await Binary.offPool { () -> (status: Int32, stderr: String) in
            #expect(eventually(60) { (Int((try? redis.cli(["GET", "k:n"])) ?? "") ?? 0) >= 200 }, "the count never reached 200")
            redis.kill9()
            return c.wait(timeout: 120)
        }
        #expect(r.status == 0, "\(r.stderr)")
        let dead = Self.lines(Binary.temp("shared-killed-dl.jsonl"))
        let written = Self.lines(output).filter { $0.hasPrefix("{\"id\"") }
        #expect(dead.count > 0 && written.count + dead.count == 2000, "written \(written.count), dead \(dead.count)")
        #expect(dead.allSatisfy { $0.contains("ctx.shared:incr: ") && ($0.contains("lost the connection to redis") || $0.contains("cannot connect to redis")) },
                "\(dead.prefix(3))")
        #expect(Binary.balanced(try Binary.stats(stats)))
    }

    @Test("a Redis that stops answering: each call fails by its timeout_ms, the run ends")
    func redisHangs() async throws {
        let redis = try RedisServer()
        let m = try Self.manifest("hang", shared: redis.url("h"),
                                  "  - use: shared_count\n    config: { seconds: 0.02 }\n    concurrency: 4\n    timeout_ms: 300\n    on_error: dead-letter\n")
        let input = Binary.temp("shared-hang-in.jsonl")
        try Binary.records(60).write(toFile: input, atomically: true, encoding: .utf8)
        let c = try Background(["run", m, "--input", input, "--output", Binary.temp("shared-hang-out.jsonl"), "--batch-size", "8"])
        let (r, paused) = try await Binary.offPool { () -> ((status: Int32, stderr: String), Date) in
            #expect(eventually(60) { (Int((try? redis.cli(["GET", "h:n"])) ?? "") ?? 0) >= 8 })
            redis.pause()
            let paused = Date()
            defer { redis.resume() }
            return (c.wait(timeout: 60), paused)
        }
        let took = Date().timeIntervalSince(paused)
        #expect(r.status == 0, "\(r.stderr)")
        let dead = Self.lines(Binary.temp("shared-hang-dl.jsonl"))
        #expect(!dead.isEmpty && dead.allSatisfy { $0.contains("timeout: the call ran past its time limit while it waited (ctx.shared:incr)") },
                "\(dead.prefix(3))")
        // At most 60 records, 4 at a time, 0.3 s each.
        #expect(took < 15, "the run took \(took) s after Redis stopped answering")
    }

    @Test("a Redis that is not there at start is waited for (logged, with backoff), then used")
    func redisLate() async throws {
        let port = TestServer.closedPort()
        let m = try Self.manifest("late", shared: "redis://127.0.0.1:\(port)/late", "  - use: shared_count\n")
        let input = Binary.temp("shared-late-in.jsonl")
        try Binary.records(100).write(toFile: input, atomically: true, encoding: .utf8)
        let c = try Background(["run", m, "--input", input, "--output", Binary.temp("shared-late-out.jsonl")])
        let (redis, r) = try await Binary.offPool { () -> (RedisServer, (status: Int32, stderr: String)) in
            sleep(2)
            return (try RedisServer(port: port), c.wait(timeout: 60))
        }
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("redis: shared store redis://127.0.0.1:\(port)/late: cannot connect to redis at 127.0.0.1:\(port): Connection refused; retrying in"),
                "\(r.stderr)")
        #expect(try redis.cli(["GET", "late:n"]) == "100")
    }

    @Test("a `shared` that is not a usable redis URL is exit 2, naming the manifest's line and what is wrong", arguments: [
        ("redis://127.0.0.1:99999/p", "the port must be a number from 1 to 65535"),
        ("redis://127.0.0.1:6379", "it names no key prefix"),
        ("redis://127.0.0.1:6379/p?x=1", "unknown parameter 'x'"),
        ("http://127.0.0.1/p", "`shared` must be a URL redis://HOST:PORT/PREFIX"),
    ])
    func badURL(_ url: String, _ problem: String) async throws {
        let m = try Self.manifest("bad", shared: url, "  - use: shared_count\n")
        for command in ["run", "check"] {
            let r = try await Binary.runOffPool([command, m], input: "{\"id\":1}\n")
            #expect(r.status == 2, "\(command): \(r.stderr)")
            #expect(r.stderr.contains("shared-bad.yaml:2: ") && r.stderr.contains(problem), "\(command): \(r.stderr)")
        }
    }
}
