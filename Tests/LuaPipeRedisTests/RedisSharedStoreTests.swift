import LuaPipe
import LuaPipeCore
import LuaPipeRedis
import LuaPipeTesting
import Testing

/// Counts records through the async API: `try await context.store.incr`.
final class AsyncCounter: ConcurrentPlugin {
    func process(_ record: Record, _ context: PluginContext) async throws -> Disposition {
        var r = record
        r["n"] = .int(try await context.store.incr("n", by: 1))
        return .replace(r)
    }

    func flush(_ context: PluginContext) async throws {
        context.emit(["total": try await context.store.get("n") ?? .null, "keys": .array(try await context.store.keys().map { .string($0) })])
    }
}

/// Uses the synchronous `context.shared`, as plugins written for the in-process store do.
final class SyncUser: Plugin {
    func process(_ record: Record, _ context: PluginContext) async throws -> Disposition {
        _ = try context.shared.incr("n", by: 1)
        return .pass
    }
}

/// `RedisSharedStore` through the library, against a real redis-server: the async API Swift
/// plugins use (`context.store`) and what the store puts in Redis.
@Suite("RedisSharedStore: ctx.shared in Redis for Swift plugins", .serialized)
struct RedisSharedStoreTests {
    static func store(_ redis: RedisServer, _ prefix: String) throws -> RedisSharedStore {
        RedisSharedStore(url: try RedisSharedURL.parse("\(redis.url)/\(prefix)"))
    }

    @Test("a Swift plugin awaiting context.store.incr in two pipelines at once: every record counted once, in Redis")
    func asyncPlugin() async throws {
        let redis = try await RedisServer.start()
        let records = (1...2000).map { i -> Record in ["id": .int(Int64(i))] }
        let (a, b) = (try Self.store(redis, "app"), try Self.store(redis, "app"))
        async let runA = PluginHarness.run({ _ in AsyncCounter() }, records: records, store: a)
        async let runB = PluginHarness.run({ _ in AsyncCounter() }, records: records, store: b)
        let runs = await [runA, runB]
        for run in runs {
            #expect(run.error == nil, "\(String(describing: run.error))")
            #expect(run.outputs.count == 2001)
            #expect(run.stats.plugins.first?.inFlightMax ?? 0 > 1, "calls overlapped while they waited on Redis")
        }
        let counts = runs.flatMap { $0.outputs.compactMap { $0["n"]?.intValue } }
        #expect(Set(counts) == Set(1...4000), "each incr got a value of its own")
        #expect(try redis.cli(["GET", "app:n"]) == "4000")
        let totals = runs.compactMap { $0.outputs.last?["total"]?.intValue }
        #expect(totals.max() == 4000, "\(totals)")
        #expect(runs[0].outputs.last?["keys"] == .array(["n"]))
        await a.close()
        await b.close()
    }

    @Test("get, set, delete and keys through the protocol: JSON values, PREFIX:key in Redis, other prefixes unseen")
    func roundTrip() async throws {
        let redis = try await RedisServer.start()
        try redis.cli(["SET", "other:k", "1"])
        try redis.cli(["SET", "a*b:k", "2"])  // a prefix with a glob character is matched literally
        let s = try Self.store(redis, "a*b")
        let store: any SharedStoreProtocol = s
        let nested: Value = .object(["list": .array([.int(1), .double(2.5), .object(["t": .bool(true)])]), "s": .string("x"), "z": .null])
        try await store.set("nested", nested)
        try await store.set("str", .string("héllo"))
        try await store.set("num", .int(7))
        try await store.set("flag", .bool(true))
        #expect(try await store.get("nested") == nested)
        #expect(try await store.get("str") == .string("héllo"))
        #expect(try await store.get("num") == .int(7))
        #expect(try await store.get("flag") == .bool(true))
        #expect(try await store.get("missing") == nil)
        #expect(try await store.incr("num", by: 5) == 12)
        #expect(try await store.incr("fresh", by: -3) == -3)
        await #expect(throws: PipelineError.self) { try await store.incr("str", by: 1) }
        #expect(try redis.cli(["GET", "a*b:nested"]) == #"{"list":[1,2.5,{"t":true}],"s":"x","z":null}"#)
        #expect(try redis.cli(["GET", "a*b:num"]) == "12")
        #expect(try await store.keys() == ["flag", "fresh", "k", "nested", "num", "str"])
        try await store.delete("nested")
        try await store.set("str", nil)
        #expect(try await store.keys() == ["flag", "fresh", "k", "num"])
        #expect(try redis.cli(["EXISTS", "a*b:nested"]) == "0")
        await s.close()
    }

    @Test("values read are charged to the host budget until released; one that does not fit fails, saying so")
    func budget() async throws {
        let redis = try await RedisServer.start()
        let store = try Self.store(redis, "mem")
        let budget = HostBudget(limit: 4 << 20)
        store.budget = budget
        try await store.set("big", .string(String(repeating: "x", count: 500_000)))
        guard case .value(_, let charged) = try await store.perform(.get("big"), until: nil) else {
            Issue.record("no value")
            return
        }
        #expect(charged == 4 * 500_002, "four times the JSON text, as HTTP answers")
        #expect(budget.used == 4 * 500_002)
        store.release(charged)
        #expect(budget.used == 0)
        try await store.set("huge", .string(String(repeating: "x", count: 2_000_000)))
        do {
            _ = try await store.get("huge")
            Issue.record("a value of 8 MB of budget fit in 4 MB")
        } catch let e as PipelineError {
            #expect(e.message.contains("not enough host memory") && e.message.contains("--host-memory-mb"), "\(e.message)")
        }
        #expect(budget.used == 0)
        await store.close()
    }

    @Test("with a store in Redis the synchronous context.shared refuses, pointing to context.store")
    func syncRefuses() async throws {
        let redis = try await RedisServer.start()
        let store = try Self.store(redis, "sync")
        let run = await PluginHarness.run({ _ in SyncUser() }, records: [["id": 1]], store: store)
        #expect(run.error?.message.contains("try await context.store") == true, "\(String(describing: run.error))")
        #expect(try redis.cli(["EXISTS", "sync:n"]) == "0")
        await store.close()
    }

    @Test("a Redis that stops answering: a call fails as a timeout by its deadline, and cancellation ends one at once")
    func deadline() async throws {
        let redis = try await RedisServer.start()
        let store = try Self.store(redis, "d")
        #expect(try await store.incr("n", by: 1) == 1)
        redis.pause()
        defer { redis.resume() }
        let start = ContinuousClock.now
        do {
            _ = try await store.perform(.incr("n", by: 1), until: .now + .milliseconds(200))
            Issue.record("a paused Redis answered")
        } catch let e as PipelineError {
            #expect(e.code == .timeout, "\(e.message)")
        }
        let took = ContinuousClock.now - start
        #expect(took >= .milliseconds(200) && took < .milliseconds(400), "\(took)")
        let call = Task { try await store.incr("n", by: 1) }
        try await Task.sleep(for: .milliseconds(50))
        let cancelled = ContinuousClock.now
        call.cancel()
        await #expect(throws: CancellationError.self) { try await call.value }
        #expect(ContinuousClock.now - cancelled < .milliseconds(100))
        await store.close()
    }

    @Test("a Redis that cannot be reached: a call fails with the address and the reason, it does not hang")
    func unreachable() async throws {
        let store = RedisSharedStore(url: try RedisSharedURL.parse("redis://127.0.0.1:\(RedisServer.freePort())/x"))
        do {
            _ = try await store.incr("n", by: 1)
            Issue.record("incr succeeded without a server")
        } catch let e as PipelineError {
            #expect(e.message.contains("cannot connect to redis at 127.0.0.1") && e.message.contains("Connection refused"), "\(e.message)")
        }
        await store.close()
    }
}
