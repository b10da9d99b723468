internal import CHiredis
import Logging
import LuaPipeCore

#if canImport(Glibc)
import Glibc
#endif

/// A Redis reply, copied out of hiredis's reply object (which is freed at once).
enum RedisReply: Sendable, Equatable {
    case string([UInt8])
    case array([RedisReply])
    case integer(Int64)
    case null
    case status(String)
    case error(String)

    var text: String? {
        switch self {
        case .string(let b): String(decoding: b, as: UTF8.self)
        case .status(let s): s
        default: nil
        }
    }
}

/// One hiredis connection, opened on first use and reopened after it breaks.
///
/// - Important: the blocking calls run on `worker`, a dedicated thread, never on the
///   cooperative pool; the context is only touched there. hiredis 0.14 leaves a context
///   unusable after a read timeout, so a timeout drops the connection (the next call opens a
///   new one) and callers keep a blocking XREADGROUP well under `readTimeout`.
final class RedisConnection: @unchecked Sendable {
    // Safe because `context` is only touched by jobs on `worker`, one at a time.
    let endpoint: RedisEndpoint
    let worker: WorkerThread
    private var context: UnsafeMutablePointer<redisContext>?
    private let readTimeout: Int

    init(_ endpoint: RedisEndpoint, name: String, readTimeoutMs: Int = 5000) {
        self.endpoint = endpoint
        self.readTimeout = readTimeoutMs
        worker = WorkerThread(name: name)
    }

    deinit {
        worker.shutdown()
        if let context { redisFree(context) }
    }

    /// Sends every command, then reads every reply: one round trip for all of them.
    func pipeline(_ commands: [[[UInt8]]]) async throws -> [RedisReply] {
        try await worker.run { try self.pipelineOnWorker(commands) }
    }

    func command(_ args: [[UInt8]]) async throws -> RedisReply {
        try await pipeline([args])[0]
    }

    /// Closes the connection (on the worker) and ends the worker thread.
    func close() async {
        await worker.run {
            if let c = self.context { redisFree(c) }
            self.context = nil
        }
        worker.shutdown()
    }

    /// `pipeline`, for a job already on `worker` (RedisPipeliner's).
    @available(*, noasync, message: "blocks: call it on the connection's worker")
    func pipelineOnWorker(_ commands: [[[UInt8]]]) throws -> [RedisReply] {
        let c = try connected()
        // One buffer holds a command's arguments; argv points into it for the call. hiredis
        // copies the command out, so the buffers serve every command of the pipeline.
        var flat: [UInt8] = []
        var offsets: [Int] = [], lengths: [Int] = []
        for args in commands {
            flat.removeAll(keepingCapacity: true)
            offsets.removeAll(keepingCapacity: true)
            lengths.removeAll(keepingCapacity: true)
            for a in args {
                offsets.append(flat.count)
                lengths.append(a.count)
                flat += a
            }
            flat.append(0)  // so an empty buffer still has an address
            let rc = flat.withUnsafeBufferPointer { buf -> Int32 in
                let base = UnsafeRawPointer(buf.baseAddress!).assumingMemoryBound(to: CChar.self)
                var argv: [UnsafePointer<CChar>?] = offsets.map { base + $0 }
                return argv.withUnsafeMutableBufferPointer { argv in
                    lengths.withUnsafeBufferPointer { redisAppendCommandArgv(c, Int32(args.count), argv.baseAddress, $0.baseAddress) }
                }
            }
            if rc != REDIS_OK { throw broken(c) }
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            if redisGetReply(c, &raw) != REDIS_OK || raw == nil { throw broken(c) }
            let reply = raw!.assumingMemoryBound(to: redisReply.self)
            replies.append(Self.convert(reply))
            freeReplyObject(raw)
        }
        // A server that is starting (LOADING its append-only file) or busy answers with an
        // error that passes: retried like a lost connection, not a failure of the run.
        for case .error(let e) in replies where Self.transient.contains(where: e.hasPrefix) {
            throw RedisError(connection: "redis at \(endpoint) is not ready: \(e)")
        }
        return replies
    }

    static let transient = ["LOADING", "BUSY ", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN"]

    private func connected() throws -> UnsafeMutablePointer<redisContext> {
        if let context { return context }
        let c = redisConnectWithTimeout(endpoint.host, Int32(endpoint.port), timeval(tv_sec: 2, tv_usec: 0))
        guard let c else { throw RedisError(connection: "cannot connect to redis at \(endpoint): out of memory") }
        if c.pointee.err != 0 {
            let message = Self.errstr(c)
            redisFree(c)
            throw RedisError(connection: "cannot connect to redis at \(endpoint): \(message)")
        }
        let ms = readTimeout
        _ = redisSetTimeout(c, timeval(tv_sec: ms / 1000, tv_usec: (ms % 1000) * 1000))
        context = c
        return c
    }

    /// The connection broke: it is dropped, the next call opens a new one.
    private func broken(_ c: UnsafeMutablePointer<redisContext>) -> RedisError {
        let message = Self.errstr(c)
        redisFree(c)
        context = nil
        return RedisError(connection: "lost the connection to redis at \(endpoint): \(message.isEmpty ? "no answer" : message)")
    }

    private static func errstr(_ c: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: c.pointee.errstr) { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    private static func convert(_ r: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let reply = r.pointee
        func bytes() -> [UInt8] {
            guard let s = reply.str else { return [] }
            return Array(UnsafeRawBufferPointer(start: s, count: Int(reply.len)).bindMemory(to: UInt8.self))
        }
        switch reply.type {
        case REDIS_REPLY_STRING: return .string(bytes())
        case REDIS_REPLY_STATUS: return .status(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_ERROR: return .error(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_INTEGER: return .integer(reply.integer)
        case REDIS_REPLY_ARRAY:
            var items: [RedisReply] = []
            items.reserveCapacity(Int(reply.elements))
            for i in 0..<Int(reply.elements) {
                if let e = reply.element[i] { items.append(convert(e)) } else { items.append(.null) }
            }
            return .array(items)
        default: return .null
        }
    }
}

/// Retries a Redis call while the connection fails, with backoff (100 ms doubling to 5 s),
/// logging each failure: Redis going away is waited out (docs/reference.md, "Redis streams").
/// An error reply is not retried. Gives up, with an `.io` error, once `stop` halts the run,
/// or with the error `giveUp` returns, once it returns one.
func withRedisRetry<T>(_ what: String, stop: StopFlag?, logger: Logger, giveUp: () -> (any Error)? = { nil },
                       _ body: () async throws -> T) async throws -> T {
    var delay = Duration.milliseconds(100)
    var failures = 0
    while true {
        do {
            let value = try await body()
            if failures > 0 { logger.notice("redis: \(what) went through after \(failures) failed attempt(s)") }
            return value
        } catch let e as RedisError where e.code == .connection {
            failures += 1
            if let e = giveUp() { throw e }
            if stop?.halts ?? false {
                throw PipelineError(.io, "\(what): \(e.message); the run is stopping, so it is not retried")
            }
            logger.warning("redis: \(what): \(e.message); retrying in \(delay.milliseconds) ms")
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(5))
        }
    }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
