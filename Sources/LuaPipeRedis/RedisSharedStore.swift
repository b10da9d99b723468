import Logging
import LuaPipeCore
import Synchronization

/// `ctx.shared` in Redis (`shared: redis://HOST:PORT/PREFIX`, docs/reference.md, "Shared
/// state in Redis"): every luapipe process that names the same prefix shares its keys, and
/// `incr` is atomic across all of them.
///
/// A key is stored as `PREFIX:key`, a value as its JSON text. `get` is GET, `set` SET (a nil
/// value: DEL), `incr` INCRBY, `delete` DEL, `keys` SCAN MATCH `PREFIX:*` (without the prefix,
/// sorted). Values and key lists read are charged to the run's host budget (`budget`), four
/// times their bytes like HTTP answers, until the caller releases them.
/// - Important: commands go over a few connections of their own, each on a dedicated thread
///   and pipelined (`RedisPipeliner`). A call fails (throws) when Redis cannot be reached or
///   the connection breaks: it is not retried, the caller's deadline bounds it.
public final class RedisSharedStore: RemoteSharedStore, CustomStringConvertible {
    public let url: RedisSharedURL
    private let pipeliners: [RedisPipeliner]
    private let next = Atomic<Int>(0)
    private let budgetSlot = Locked<HostBudget?>(nil)

    /// The run's host budget: values read are charged to it until released.
    public var budget: HostBudget? {
        get { budgetSlot.withLock { $0 } }
        set { budgetSlot.withLock { $0 = newValue } }
    }

    /// What a value read holds of the host budget per byte of its JSON text: the reply's
    /// bytes, its tape, and the copy into a Lua state or a `Value` (as HTTP answers count).
    static let weight = 4

    public init(url: RedisSharedURL, connections: Int = 2) {
        self.url = url
        pipeliners = (0..<max(1, connections)).map { i in
            RedisPipeliner(RedisConnection(url.endpoint, name: "luapipe-redis-shared-\(i)"))
        }
    }

    public var description: String { url.description }

    /// Closes the connections (the run is over). One whose thread is still in a round trip
    /// (a Redis that stopped answering, up to the 5 s read timeout) is not waited for: its
    /// thread ends, and frees it, once the round trip does.
    public func close() async {
        for p in pipeliners where !p.connection.worker.isBusy { await p.connection.close() }
    }

    /// Waits until Redis answers PING: a Redis that is not there yet is waited out with
    /// backoff (100 ms doubling to 5 s), each failure logged, as the stream input does. Gives
    /// up when `stop` is set (a signal) or Redis answers with an error.
    public func waitUntilReachable(stop: StopFlag, logger: Logger) async throws {
        var delay = Duration.milliseconds(100)
        var failures = 0
        while true {
            do {
                let reply = try await pipeliners[0].send([bytes("PING")], until: nil)
                if case .error(let e) = reply { throw PipelineError(.io, "shared: \(url): Redis answered PING with: \(e)") }
                if failures > 0 { logger.notice("redis: shared store \(url) reached after \(failures) failed attempt(s)") }
                return
            } catch let e as RedisError {
                failures += 1
                logger.warning("redis: shared store \(url): \(e.message); retrying in \(delay.milliseconds) ms")
                let until = ContinuousClock.now + delay
                while ContinuousClock.now < until {
                    if stop.isSet { throw PipelineError(.cancelled, "shared: \(url): stopped while waiting for Redis") }
                    try? await Task.sleep(for: .milliseconds(50))
                }
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    private func stored(_ key: String) -> [UInt8] { Array(url.prefix.utf8) + [UInt8(ascii: ":")] + Array(key.utf8) }

    /// One command on the next connection; an error reply is thrown.
    private func call(_ command: [[UInt8]], _ deadline: ContinuousClock.Instant?) async throws -> RedisReply {
        let p = pipeliners[next.add(1, ordering: .relaxed).oldValue % pipeliners.count]
        let reply: RedisReply
        do { reply = try await p.send(command, until: deadline) } catch let e as RedisError {
            throw PipelineError(.io, "\(e.message) (shared: \(url))")
        } catch is RedisPipeliner.DeadlinePassed {
            throw PipelineError(.timeout, "no answer from Redis within the call's time limit (shared: \(url))")
        }
        if case .error(let e) = reply { throw PipelineError(.plugin, "Redis answered: \(e) (shared: \(url))") }
        return reply
    }

    private func charge(_ n: Int) throws -> Int {
        guard let budget else { return 0 }
        guard budget.tryCharge(n) else {
            throw PipelineError(.memory, "not enough host memory for a value read from Redis (\((n / Self.weight) >> 10) KiB): "
                                + "the answers and records in flight fill the host budget (--host-memory-mb)")
        }
        return n
    }

    public func release(_ charged: Int) {
        if charged > 0 { budget?.adjust(-charged) }
    }

    public func perform(_ call: SharedCall, until deadline: ContinuousClock.Instant?) async throws -> SharedAnswer {
        switch call {
        case .get(let key): return try await get(key, deadline)
        case .set(let key, let value?):
            var text: [UInt8] = []
            JSONWriter.write(Tape(value), to: &text)
            _ = try await self.call([bytes("SET"), stored(key), text], deadline)
            return .none
        case .set(let key, nil), .delete(let key):
            _ = try await self.call([bytes("DEL"), stored(key)], deadline)
            return .none
        case .incr(let key, let delta): return .integer(try await incr(key, delta, deadline))
        case .keys: return try await keys(deadline)
        }
    }

    private func get(_ key: String, _ deadline: ContinuousClock.Instant?) async throws -> SharedAnswer {
        switch try await call([bytes("GET"), stored(key)], deadline) {
        case .null: return .none
        case .string(let text):
            let charged = try charge(text.count * Self.weight)
            do {
                return .value(try text.withUnsafeBufferPointer { (b) throws(JSONError) in try JSONReader.parseValue(b) }, charged: charged)
            } catch {
                release(charged)
                throw PipelineError(.plugin, "the value of '\(key.prefix(200))' in Redis (\(url.prefix):\(key.prefix(200))) is not JSON: \(error)")
            }
        case let other: throw Self.unexpected("GET", other)
        }
    }

    private func incr(_ key: String, _ delta: Int64, _ deadline: ContinuousClock.Instant?) async throws -> Int64 {
        do {
            switch try await call([bytes("INCRBY"), stored(key), bytes("\(delta)")], deadline) {
            case .integer(let n): return n
            case let other: throw Self.unexpected("INCRBY", other)
            }
        } catch let e as PipelineError where e.code == .plugin && e.message.contains("not an integer") {
            throw PipelineError(.plugin, "the value of '\(key.prefix(200))' is not an integer (\(e.message))")
        } catch let e as PipelineError where e.code == .plugin && e.message.contains("overflow") {
            throw PipelineError(.plugin, "'\(key.prefix(200))' would overflow a 64-bit integer (\(e.message))")
        }
    }

    private func keys(_ deadline: ContinuousClock.Instant?) async throws -> SharedAnswer {
        var found = Set<String>()  // SCAN may return a key twice
        var cursor = "0", charged = 0
        let skip = url.prefix.utf8.count + 1
        do {
            repeat {
                let reply = try await call([bytes("SCAN"), bytes(cursor), bytes("MATCH"), Self.pattern(url.prefix), bytes("COUNT"), bytes("1000")],
                                           deadline)
                guard case .array(let parts) = reply, parts.count == 2, let c = parts[0].text, case .array(let items) = parts[1] else {
                    throw Self.unexpected("SCAN", reply)
                }
                for case .string(let b) in items where b.count >= skip {
                    charged += try charge(b.count * Self.weight)
                    found.insert(String(decoding: b[skip...], as: UTF8.self))
                }
                cursor = c
            } while cursor != "0"
        } catch {
            release(charged)
            throw error
        }
        return .keys(found.sorted(), charged: charged)
    }

    // MARK: - SharedStoreProtocol: what Swift plugins await (`context.store`)

    public func get(_ key: String) async throws -> Value? {
        guard case .value(let tape, let charged) = try await perform(.get(key), until: nil) else { return nil }
        defer { release(charged) }
        return tape.value()
    }

    public func set(_ key: String, _ value: Value?) async throws { _ = try await perform(.set(key, value), until: nil) }

    public func incr(_ key: String, by delta: Int64) async throws -> Int64 { try await incr(key, delta, nil) }

    public func delete(_ key: String) async throws { _ = try await perform(.delete(key), until: nil) }

    public func keys() async throws -> [String] {
        guard case .keys(let keys, let charged) = try await perform(.keys, until: nil) else { return [] }
        release(charged)
        return keys
    }

    /// `PREFIX:*` with the prefix's glob characters escaped.
    static func pattern(_ prefix: String) -> [UInt8] {
        var out: [UInt8] = []
        for b in prefix.utf8 {
            if b == UInt8(ascii: "*") || b == UInt8(ascii: "?") || b == UInt8(ascii: "[") || b == UInt8(ascii: "]")
                || b == UInt8(ascii: "\\") { out.append(UInt8(ascii: "\\")) }
            out.append(b)
        }
        return out + Array(":*".utf8)
    }

    static func unexpected(_ command: String, _ reply: RedisReply) -> PipelineError {
        PipelineError(.io, "unexpected reply to \(command) from Redis: \(reply)")
    }
}
