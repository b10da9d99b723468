import Foundation
import Testing

/// Redis streams as input, output and dead letter, end to end (docs/reference.md, "Redis
/// streams"): each test starts its own redis-server on a free loopback port.
@Suite("Redis streams through consumer groups, end to end", .serialized)
struct RedisStreamTests {
    static func manifest(_ name: String, _ entries: String) throws -> String {
        let path = Binary.temp("redis-\(name).yaml")
        try "api: 1\nplugin_paths: [\(Binary.fixtures)/plugins]\nplugins:\n\(entries)"
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func records(_ n: Int) -> [String] { (1...n).map { "{\"id\":\($0),\"name\":\"n\($0)\"}" } }

    /// Every input id is the `source_id` of an output entry; returns the duplicates (ids
    /// written more than once).
    static func coverage(_ redis: RedisServer, input: String = "in", output: String = "out") throws -> (missing: Int, duplicates: [String]) {
        let inputs = try redis.ids(input)
        var seen: [String: Int] = [:]
        for e in try redis.entries(output) { if let s = e.fields["source_id"] { seen[s, default: 0] += 1 } }
        let missing = inputs.filter { seen[$0] == nil }.count
        return (missing, seen.filter { $0.value > 1 }.map(\.key))
    }

    @Test("3 consumers in one group, one SIGKILLed at a third and replaced: every entry written, nothing pending, duplicates only from the killed one's pending entries")
    func scaleOut() async throws {
        let redis = try RedisServer()
        let total = 100_000
        try redis.fill("in", json: Self.records(total))
        #expect(redis.length("in") == total)
        let m = try Self.manifest("scale", "  - use: upper\n    timeout_ms: 1000\n")
        func consumer(_ name: String) throws -> Background {
            try Background(["run", m, "--input", redis.url("in", "group=g&consumer=\(name)&claim_idle_ms=5000"),
                            "--output", redis.url("out"), "--exit-when-idle-ms", "3000"])
        }
        let (c1, c2, c3) = (try consumer("c1"), try consumer("c2"), try consumer("c3"))
        let killedPending: Set<String> = try await Binary.offPool {
            #expect(eventually(120) { redis.length("out") >= total / 3 }, "the output never reached a third")
            c1.signal(SIGKILL)
            _ = c1.wait()
            return try redis.pendingIDs("in", "g", "c1")
        }
        let replacement = try consumer("c1")  // the same worker started again
        let results = try await Binary.offPool { [c2.wait(timeout: 300), c3.wait(timeout: 300), replacement.wait(timeout: 300)] }
        for r in results { #expect(r.status == 0, "\(r.stderr)") }
        let (missing, duplicates) = try Self.coverage(redis)
        #expect(missing == 0)
        #expect(redis.pending("in", "g") == 0)
        #expect(Set(duplicates).isSubset(of: killedPending), "duplicates not from the killed consumer's pending entries")
        print("redis scale-out: \(total) entries, \(killedPending.count) pending on the killed consumer, \(duplicates.count) written twice, output \(redis.length("out")) entries")
    }

    @Test("entries a dead consumer left pending are claimed by a live one once idle past claim_idle_ms")
    func claim() async throws {
        let redis = try RedisServer()
        try redis.fill("in", json: Self.records(50))
        try redis.cli(["XGROUP", "CREATE", "in", "g", "0"])
        try redis.cli(["XREADGROUP", "GROUP", "g", "dead", "COUNT", "20", "STREAMS", "in", ">"])  // never acknowledged
        #expect(redis.pending("in", "g") == 20)
        let m = try Self.manifest("claim", "  - use: upper\n    timeout_ms: 100\n")
        let r = try await Binary.runOffPool(["run", m, "--input", redis.url("in", "group=g&consumer=live&claim_idle_ms=300"),
                                             "--output", redis.url("out"), "--exit-when-idle-ms", "1500"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.coverage(redis).missing == 0)
        #expect(redis.pending("in", "g") == 0)
        // Claimed in reads that grow from one entry: the counts the log gives add up to 20.
        let claimed = r.stderr.split(separator: "\n").compactMap { line -> Int? in
            guard let at = line.range(of: "claimed ") else { return nil }
            return Int(line[at.upperBound...].prefix { $0.isNumber })
        }
        #expect(claimed.reduce(0, +) == 20, "\(r.stderr)")
    }

    @Test("SIGTERM with records in flight: exit 143, nothing pending, every acknowledged entry written")
    func sigterm() async throws {
        let redis = try RedisServer()
        try redis.fill("in", json: Self.records(3000))
        let m = try Self.manifest("term", "  - use: slowpoke\n    config: { seconds: 0.002 }\n    timeout_ms: 1000\n")
        let c = try Background(["run", m, "--input", redis.url("in", "group=g&consumer=c"), "--output", redis.url("out"),
                                "--batch-size", "50"])
        let (r, pendingBefore) = try await Binary.offPool { () -> ((status: Int32, stderr: String), Int) in
            #expect(eventually(60) { redis.length("out") >= 300 })
            let pending = redis.pending("in", "g")
            c.signal(SIGTERM)
            return (c.wait(timeout: 30), pending)
        }
        #expect(r.status == 143, "\(r.stderr)")
        #expect(pendingBefore > 0, "no record was in flight when the signal came")
        #expect(redis.pending("in", "g") == 0)
        // Everything the group delivered was acknowledged, and all of it is in the output.
        let out = Set(try redis.entries("out").compactMap { $0.fields["source_id"] })
        let read = try Self.delivered(redis)
        #expect(read.count < 3000, "the run read everything before the signal: nothing was left to stop")
        #expect(read.allSatisfy(out.contains), "an entry was acknowledged but not written")
        #expect(r.stderr.contains("flush ran") && r.stderr.contains("teardown ran"), "\(r.stderr)")
    }

    @Test("SIGTERM when draining would take longer than the longest timeout_ms: the run halts, exit 143, the rest stays pending")
    func sigtermHalts() async throws {
        let redis = try RedisServer()
        try redis.fill("in", json: Self.records(200))
        // Waits, not CPU: a loaded machine does not push a record past its timeout.
        let m = try Self.manifest("term-slow", "  - use: waiter\n    config: { seconds: 1 }\n    concurrency: 1\n    timeout_ms: 1500\n")
        let c = try Background(["run", m, "--input", redis.url("in", "group=g&consumer=c&claim_idle_ms=3000"),
                                "--output", redis.url("out"), "--batch-size", "4", "--workers", "1"])
        let (r, seconds) = try await Binary.offPool { () -> ((status: Int32, stderr: String), Double) in
            #expect(eventually(60) { redis.length("out") >= 1 })
            let sent = Date()
            c.signal(SIGTERM)
            let r = c.wait(timeout: 60)
            return (r, Date().timeIntervalSince(sent))
        }
        #expect(r.status == 143, "\(r.stderr)")
        #expect(seconds < 4.5, "exited \(seconds) s after the signal")
        #expect(redis.pending("in", "g") > 0)
        // What was acknowledged is written.
        let out = Set(try redis.entries("out").compactMap { $0.fields["source_id"] })
        let pending = try redis.pendingIDs("in", "g", "c")
        let acknowledged = try Self.delivered(redis).filter { !pending.contains($0) }
        #expect(acknowledged.allSatisfy(out.contains), "an entry was acknowledged but not written")
    }

    /// The input entries the group has handed out so far (up to its last-delivered-id).
    static func delivered(_ redis: RedisServer) throws -> [String] {
        let info = try redis.cli(["XINFO", "GROUPS", "in"]).split(separator: "\n").map(String.init)
        guard let i = info.firstIndex(of: "last-delivered-id") else { return [] }
        let last = info[i + 1]
        return try redis.ids("in").prefix { $0 != last } + [last]
    }

    @Test("a record failing under dead-letter lands in the dead-letter stream and its entry is acknowledged")
    func deadLetter() async throws {
        let redis = try RedisServer()
        try redis.fill("in", json: ["{\"id\":1}", "{\"id\":2,\"bad\":true}", "{\"id\":3}"])
        let inputs = try redis.ids("in")
        let m = try Self.manifest("dl", "  - use: failer\n    on_error: dead-letter\n")
        let r = try await Binary.runOffPool(["run", m, "--input", redis.url("in", "group=g&consumer=c"), "--output", redis.url("out"),
                                             "--dead-letter", redis.url("dl"), "--exit-when-idle-ms", "500"])
        #expect(r.status == 0, "\(r.stderr)")
        let dl = try redis.entries("dl")
        #expect(dl.count == 1)
        #expect(dl.first?.fields["source_id"] == inputs[1])
        #expect(dl.first?.fields["json"]?.contains("bad record 2") == true, "\(dl)")
        let out = try redis.entries("out")
        #expect(out.map { $0.fields["source_id"] } == [inputs[0], inputs[2]])
        #expect(out.map { $0.fields["source_index"] } == ["0", "0"])
        #expect(out.first?.fields["json"] == "{\"id\":1,\"ok\":true}")
        #expect(redis.pending("in", "g") == 0)
    }

    @Test("maxlen trims the output stream to about that many entries")
    func maxLen() async throws {
        let redis = try RedisServer()
        try redis.fill("in", json: Self.records(2000))
        let m = try Self.manifest("maxlen", "  - use: upper\n")
        let r = try await Binary.runOffPool(["run", m, "--input", redis.url("in", "group=g&consumer=c"),
                                             "--output", redis.url("out", "maxlen=100"), "--exit-when-idle-ms", "500"])
        #expect(r.status == 0, "\(r.stderr)")
        let n = redis.length("out")
        #expect(n >= 100 && n < 1000, "XLEN out is \(n)")
        #expect(redis.pending("in", "g") == 0)
    }

    @Test("a Redis that is not there at start is waited for, logged, then read")
    func redisLate() async throws {
        let port = TestServer.closedPort()
        let m = try Self.manifest("late", "  - use: upper\n")
        let c = try Background(["run", m, "--input", "redis://127.0.0.1:\(port)/in?group=g&consumer=c",
                                "--output", "redis://127.0.0.1:\(port)/out", "--exit-when-idle-ms", "1000"])
        let (redis, r) = try await Binary.offPool { () -> (RedisServer, (status: Int32, stderr: String)) in
            sleep(2)
            let redis = try RedisServer(port: port)
            try redis.fill("in", json: Self.records(10))
            return (redis, c.wait(timeout: 60))
        }
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("cannot connect to redis at 127.0.0.1:\(port): Connection refused; retrying in"), "\(r.stderr)")
        #expect(try Self.coverage(redis).missing == 0)
    }

    @Test("an entry without `json` or with bad JSON is an input error under on_input_error")
    func inputErrors() async throws {
        let redis = try RedisServer()
        try redis.fill("in", [[("json", "{\"id\":1}")], [("other", "x")], [("json", "{\"id\":")], [("json", "{\"id\":4}")]])
        let ids = try redis.ids("in")
        let m = try Self.manifest("input", "  - use: failer\n")
        // fail (the default): the run fails at the entry, which stays pending.
        let failed = try await Binary.runOffPool(["run", m, "--input", redis.url("in", "group=g&consumer=c"), "--output", redis.url("out"),
                                                  "--exit-when-idle-ms", "500"])
        #expect(failed.status == 1)
        #expect(failed.stderr.contains("redis entry \(ids[1]) of stream 'in': no field 'json'"), "\(failed.stderr)")
        #expect(try redis.pendingIDs("in", "g", "c").contains(ids[1]))
        // drop: the run goes past both; everything is acknowledged.
        let dropped = try await Binary.runOffPool(["run", m, "--input", redis.url("in", "group=g2&consumer=c"), "--output", redis.url("out2"),
                                                   "--on-input-error", "drop", "--exit-when-idle-ms", "500"])
        #expect(dropped.status == 0, "\(dropped.stderr)")
        #expect(try redis.entries("out2").map { $0.fields["source_id"] } == [ids[0], ids[3]])
        #expect(redis.pending("in", "g2") == 0)
        // dead-letter: both lines are in the dead-letter stream, with what was wrong.
        let dl = try await Binary.runOffPool(["run", m, "--input", redis.url("in", "group=g3&consumer=c"), "--output", redis.url("out3"),
                                              "--on-input-error", "dead-letter", "--dead-letter", redis.url("dl3"), "--exit-when-idle-ms", "500"])
        #expect(dl.status == 0, "\(dl.stderr)")
        let letters = try redis.entries("dl3")
        #expect(letters.map { $0.fields["source_id"] } == [ids[1], ids[2]])
        #expect(letters.last?.fields["json"]?.contains("field 'json' is not one JSON object") == true, "\(letters)")
        #expect(redis.pending("in", "g3") == 0)
    }

    @Test("a bad redis URL is a usage error (exit 2) that says what is wrong", arguments: [
        (["--input", "redis://127.0.0.1:6379/in?consumer=c"], "names no consumer group"),
        (["--input", "redis://127.0.0.1:6379/in?group=g"], "names no consumer (consumer=C)"),
        (["--input", "redis://127.0.0.1:6379?group=g&consumer=c"], "names no stream"),
        (["--input", "redis://127.0.0.1:99999/in?group=g&consumer=c"], "the port must be a number from 1 to 65535"),
        (["--input", "redis://127.0.0.1/in?group=g&consumer=c&start=1"], "start must be 0"),
        (["--input", "redis://127.0.0.1/in?group=g&consumer=c&claim_idle_ms=x"], "claim_idle_ms must be a whole number"),
        (["--input", "redis://127.0.0.1/in?group=g&consumer=c&claim_idle_ms=500"], "claim_idle_ms (500) must exceed the longest timeout_ms"),
        (["--input", "redis://127.0.0.1/in?group=g&consumer=c&colour=red"], "unknown parameter 'colour'"),
        (["--output", "redis://127.0.0.1/out?maxlen=0"], "maxlen must be a whole number from 1"),
        (["--dead-letter", "redis://127.0.0.1/"], "--dead-letter redis://127.0.0.1/: it names no stream"),
        (["--exit-when-idle-ms", "100"], "--exit-when-idle-ms applies to a stream input"),
    ])
    func badURL(_ args: [String], _ message: String) async throws {
        let m = try Self.manifest("url", "  - use: upper\n")
        let r = try await Binary.runOffPool(["run", m] + args)
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }

    @Test("redis-server killed (-9, appendonly, fsync always) and started again on the same port mid-run: nothing lost")
    func redisRestart() async throws {
        let redis = try RedisServer(appendOnly: true)
        let total = 20_000
        try redis.fill("in", json: Self.records(total))
        let m = try Self.manifest("restart", "  - use: slowpoke\n    config: { seconds: 0.0001 }\n    timeout_ms: 1000\n")
        let c = try Background(["run", m, "--input", redis.url("in", "group=g&consumer=c"), "--output", redis.url("out"),
                                "--batch-size", "100", "--exit-when-idle-ms", "3000"])
        let r = try await Binary.offPool { () -> (status: Int32, stderr: String) in
            #expect(eventually(60) { redis.length("out") >= total / 4 })
            redis.kill9()
            sleep(3)
            try redis.start()
            return c.wait(timeout: 180)
        }
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("retrying in"), "the consumer never noticed redis going away: \(r.stderr)")
        let (missing, duplicates) = try Self.coverage(redis)
        #expect(missing == 0)
        #expect(redis.pending("in", "g") == 0)
        print("redis restart: \(total) entries, \(duplicates.count) written twice")
    }

    /// SECURITY.md's Redis term: a read is held whole, about ten times over, before any budget
    /// sees it, so reads grow from one entry and stay within an eighth of --host-memory-mb.
    @Test("60 entries of 5 MB with a 16 MiB host budget: peak RSS within the memory formula")
    func bigEntriesMemory() async throws {
        let redis = try RedisServer()
        let big = "{\"s\":\"" + String(repeating: "x", count: 5_000_000) + "\"}"
        try redis.fill("in", json: Array(repeating: big, count: 60))
        let m = try Self.manifest("big", "  - use: set\n    config: { fields: { x: 1 } }\n")
        // 10 x the largest line + 1.5 x the host budget + 10 x max(an eighth of it, the largest entry)
        let bound = MemoryFormulaTests.bound(memoryMB: 0, hostMB: 16, lineMB: 5) + 10 * max(2 << 20, 5_000_000)
        let r = try await Binary.offPool {
            try UncheckedBox(MemoryFormulaTests.measure([m, "--input", redis.url("in", "group=g&consumer=c"),
                                                         "--host-memory-mb", "16", "--exit-when-idle-ms", "1000"], bound: bound))
        }.value
        // Reading the 60 entries in one reply took 994 MiB for 100 of them.
        #expect(!r.killed && r.peak <= bound, "peak \(r.peak >> 20) MiB, bound \(bound >> 20) MiB")
        #expect(r.status == 0 && r.stats["records_out"] as? Int == 60, "\(r.stats)")
        #expect(redis.pending("in", "g") == 0)
    }
}
