import DequeModule
import Logging
import LuaPipeCore
import Synchronization

/// Reads a Redis stream through a consumer group (docs/reference.md, "Redis streams").
///
/// Order of reading: first this consumer's own pending entries (a restart re-reads what it
/// had not acknowledged), then new entries (XREADGROUP `>`, BLOCK while idle), and now and
/// then entries other consumers left pending past `claim_idle_ms` (XAUTOCLAIM). Each entry
/// gets the next record number; the pipeline acknowledges numbers in order once done, and
/// the entries behind them are XACKed then, on a connection of their own.
/// - Important: `nextBatch` has one caller at a time (the pipeline's reader); `acknowledge`
///   and `sourceID` may run at the same time from other tasks.
public final class RedisStreamSource: AcknowledgingSource, @unchecked Sendable {
    // Safe because the reading state (`phase`, `pendingFrom`, ...) is only touched by the one
    // reader task; what other tasks share is in `ledger`, behind a Mutex.
    public let url: RedisStreamURL
    public let batchSize: Int
    private let exitWhenIdle: Duration?
    private let logger: Logger
    private let reader: RedisConnection
    private let acker: RedisConnection
    /// Stops the retries of an ack or a read once the run halts.
    private let stopFlag = Locked<StopFlag?>(nil)

    /// BLOCK of one XREADGROUP: short, since hiredis 0.14 cannot interrupt it and a signal
    /// must not wait long for it.
    static let blockMs = 250

    /// How many entries the next read asks for. A read's reply is held whole, about ten times
    /// over (hiredis's buffer and objects, the copies, the tapes) before any budget sees it:
    /// 100 entries of 5 MB took 994 MiB. So reads start at one entry and double while they
    /// stay under `readBytes`, and shrink to what fits it after larger entries.
    private var count = 1
    private let readBytes: Int

    private enum Phase { case create, ownPending, new }
    private var phase = Phase.create
    private var pendingFrom = "0"
    private var claimCursor = "0-0"
    private var lastClaim = ContinuousClock.now
    private var idleSince: ContinuousClock.Instant?

    /// Entries read and not yet acknowledged, in record-number order.
    private struct Ledger {
        var next = 1              // the number the next entry gets
        var first = 1             // the number of `ids[0]`
        var ids = Deque<String>()
    }
    private let ledger = Mutex(Ledger())
    /// The connection `pending()` asks on, opened on its first call (`--metrics` only).
    private let monitor = Mutex<(connection: RedisConnection?, closed: Bool)>((nil, false))

    /// `readBytes`: what one read may bring in (the CLI gives an eighth of --host-memory-mb).
    public init(url: RedisStreamURL, batchSize: Int, readBytes: Int = 64 << 20, exitWhenIdleMs: Int?, logger: Logger) {
        self.url = url
        self.batchSize = max(1, batchSize)
        self.readBytes = max(1, readBytes)
        self.exitWhenIdle = exitWhenIdleMs.map { .milliseconds($0) }
        self.logger = logger
        reader = RedisConnection(url.endpoint, name: "luapipe-redis-read",
                                 readTimeoutMs: Self.blockMs + 5000)
        acker = RedisConnection(url.endpoint, name: "luapipe-redis-ack")
    }

    /// The input entry id behind a record number, while it is not yet acknowledged.
    public func sourceID(of number: Int) -> String? {
        ledger.withLock { l in
            let i = number - l.first
            return i >= 0 && i < l.ids.count ? l.ids[i] : nil
        }
    }

    /// Entries read and not yet acknowledged.
    public var inFlight: Int { ledger.withLock { $0.ids.count } }

    public func nextBatch(stop: StopFlag) async throws -> [InputEvent]? {
        stopFlag.withLock { $0 = stop }
        do { return try await readBatch(stop) } catch is StoppedWaiting { return nil }
    }

    private func readBatch(_ stop: StopFlag) async throws -> [InputEvent]? {
        while true {
            if stop.isSet { return nil }
            switch phase {
            case .create:
                try await createGroup(stop)
                phase = .ownPending
            case .ownPending:
                // No BLOCK: what is pending for this consumer is answered at once.
                let reply = try await read(stop, ["XREADGROUP", "GROUP", group, consumer, "COUNT", "\(count)",
                                                  "STREAMS", url.stream, pendingFrom])
                let entries = try Self.streamEntries(reply, url)
                guard let last = entries.last else {
                    if phase == .ownPending { phase = .new }  // not when the group must be made again
                    continue
                }
                pendingFrom = last.id
                if let events = await take(entries), !events.isEmpty {
                    logger.info("redis: re-reading \(events.count) entries of stream '\(url.stream)' this consumer had not acknowledged")
                    return events
                }
            case .new:
                if let events = try await claim(stop), !events.isEmpty { return events }
                let reply = try await read(stop, ["XREADGROUP", "GROUP", group, consumer, "COUNT", "\(count)",
                                                  "BLOCK", "\(Self.blockMs)", "STREAMS", url.stream, ">"])
                let entries = try Self.streamEntries(reply, url)
                if let events = await take(entries, new: true), !events.isEmpty {
                    idleSince = nil
                    return events
                }
                if let exitWhenIdle {
                    if inFlight > 0 {
                        idleSince = nil
                    } else if let since = idleSince {
                        if ContinuousClock.now - since >= exitWhenIdle {
                            logger.info("redis: nothing to read from stream '\(url.stream)' for \(exitWhenIdle.milliseconds) ms: the run ends (--exit-when-idle-ms)")
                            return nil
                        }
                    } else {
                        idleSince = .now
                    }
                }
            }
        }
    }

    public func acknowledge(through number: Int) async {
        let ids: [String] = ledger.withLock { l in
            var done: [String] = []
            while let id = l.ids.first, l.first <= number {
                l.ids.removeFirst()
                l.first += 1
                done.append(id)
            }
            return done
        }
        await ack(ids)
    }

    /// Closes the connections.
    public func close() async {
        await reader.close()
        await acker.close()
        await monitor.withLock { m in m.closed = true; return m.connection }?.close()
    }

    /// How many entries the consumer group has delivered and not seen acknowledged, all
    /// consumers together (the summary form of XPENDING), asked once on a connection of its
    /// own so that it never waits behind a blocking read. Nil when Redis cannot say now (not
    /// reachable, the group not made yet) and once the source is closed.
    /// - Important: the caller stops calling before `close()`.
    public func pending() async -> Int? {
        let connection: RedisConnection? = monitor.withLock { m in
            if m.closed { return nil }
            if m.connection == nil { m.connection = RedisConnection(url.endpoint, name: "luapipe-redis-metrics", readTimeoutMs: 1000) }
            return m.connection
        }
        guard let connection, let reply = try? await connection.command(["XPENDING", url.stream, group].map(bytes)),
              case .array(let parts) = reply, case .integer(let n)? = parts.first else { return nil }
        return Int(n)
    }

    private var group: String { url.group ?? "" }
    private var consumer: String { url.consumer ?? "" }

    private func ack(_ ids: [String]) async {
        guard !ids.isEmpty else { return }
        let stop = stopFlag.withLock { $0 }
        do {
            let reply = try await withRedisRetry("XACK of \(ids.count) entries of stream '\(url.stream)' at \(url.endpoint)",
                                                 stop: stop, logger: logger) {
                try await acker.command((["XACK", url.stream, group] + ids).map(bytes))
            }
            if case .error(let e) = reply { logger.error("redis: XACK on stream '\(url.stream)' failed: \(e); the entries stay pending") }
        } catch {
            logger.error("redis: \(error); \(ids.count) entries stay pending and will be read again")
        }
    }

    private func read(_ stop: StopFlag, _ args: [String]) async throws -> RedisReply {
        // A read that cannot get through ends once the run stops reading: nothing is lost.
        let reply = try await withRedisRetry("\(args[0]) on stream '\(url.stream)' at \(url.endpoint)", stop: stop, logger: logger,
                                             giveUp: { stop.isSet ? StoppedWaiting() : nil }) {
            try await reader.command(args.map(bytes))
        }
        if case .error(let e) = reply {
            if e.hasPrefix("NOGROUP") {  // the stream or group was deleted while we ran
                logger.warning("redis: \(e); creating the group again")
                phase = .create
                return .null
            }
            throw PipelineError(.io, "redis \(args[0]) on stream '\(url.stream)' at \(url.endpoint) failed: \(e)")
        }
        return reply
    }

    private func createGroup(_ stop: StopFlag) async throws {
        let reply = try await withRedisRetry("XGROUP CREATE on stream '\(url.stream)' at \(url.endpoint)", stop: stop, logger: logger,
                                             giveUp: { stop.isSet ? StoppedWaiting() : nil }) {
            try await reader.command(["XGROUP", "CREATE", url.stream, group, url.start, "MKSTREAM"].map(bytes))
        }
        if case .error(let e) = reply, !e.hasPrefix("BUSYGROUP") {
            throw PipelineError(.io, "cannot create consumer group '\(group)' on stream '\(url.stream)' at \(url.endpoint): \(e)")
        }
        pendingFrom = "0"
    }

    /// Entries other consumers left pending past `claim_idle_ms`, at most every half of it.
    private func claim(_ stop: StopFlag) async throws -> [InputEvent]? {
        // A scan of the group's pending entries goes on at once while it has more to see.
        let every = Duration.milliseconds(min(max(url.claimIdleMs / 2, 100), 10_000))
        guard claimCursor != "0-0" || ContinuousClock.now - lastClaim >= every else { return nil }
        lastClaim = .now
        let reply = try await read(stop, ["XAUTOCLAIM", url.stream, group, consumer, "\(url.claimIdleMs)", claimCursor,
                                          "COUNT", "\(count)"])
        guard case .array(let parts) = reply, parts.count >= 2, let cursor = parts[0].text else { return nil }
        claimCursor = cursor
        let entries = try Self.entries(parts[1], url)
        if !entries.isEmpty {
            logger.notice("redis: claimed \(entries.count) entries of stream '\(url.stream)' left pending by other consumers for over \(url.claimIdleMs) ms")
        }
        return await take(entries)
    }

    /// Sizes the next read from this one: twice as many entries while the read stays within
    /// `readBytes`, as many as fit it (at least one) once an entry is larger.
    private func resize(after entries: [(id: String, fields: [[UInt8]]?)]) {
        guard !entries.isEmpty else { return }
        let largest = entries.reduce(1) { m, e in max(m, e.fields?.reduce(0) { $0 + $1.count } ?? 0) }
        let fits = max(1, readBytes / largest)
        count = min(batchSize, fits, entries.count >= count ? 2 * count : count)
    }

    /// Numbers the entries and makes them events; entries already in flight here (claimed
    /// back) are skipped, deleted ones (no fields) are acknowledged at once. `new`: read with
    /// `>`, so none of them can be in flight already.
    private func take(_ entries: [(id: String, fields: [[UInt8]]?)], new: Bool = false) async -> [InputEvent]? {
        resize(after: entries)
        var events: [InputEvent] = []
        var gone: [String] = []
        ledger.withLock { l in
            // Built only for claimed and re-read entries: a set kept for every entry read cost
            // 6% of a stream run's CPU (hashing each id in and out).
            let inFlight: Set<String> = new || l.ids.isEmpty || entries.isEmpty ? [] : Set(l.ids)
            for (id, fields) in entries {
                guard let fields else { gone.append(id); continue }
                guard !inFlight.contains(id) else { continue }
                let number = l.next
                l.next += 1
                l.ids.append(id)
                events.append(Self.event(id, fields, number, url))
            }
        }
        if !gone.isEmpty {
            logger.warning("redis: \(gone.count) pending entries of stream '\(url.stream)' were deleted from it; acknowledged without processing")
            await ack(gone)
        }
        return events
    }

    static func event(_ id: String, _ fields: [[UInt8]], _ number: Int, _ url: RedisStreamURL) -> InputEvent {
        var json: [UInt8]?
        var names: [String] = []
        var i = 0
        while i + 1 < fields.count {
            let name = String(decoding: fields[i], as: UTF8.self)
            if name == "json", json == nil { json = fields[i + 1] }
            names.append(name)
            i += 2
        }
        let place = "redis entry \(id) of stream '\(url.stream)'"
        guard let json else {
            let list = names.isEmpty ? "none" : names.map { "'\($0)'" }.joined(separator: ", ")
            return .invalid(line: 0, number: number, text: [],
                            error: "\(place): no field 'json' (its fields: \(list)); a record is an entry whose field 'json' holds its JSON text")
        }
        do {
            let tape = try json.withUnsafeBufferPointer { try JSONReader.parseRecord($0) }
            return .record(Item(number: number, tape: tape))
        } catch {
            return .invalid(line: 0, number: number, text: json, error: "\(place): field 'json' is not one JSON object: \(error)")
        }
    }

    /// The entries of an XREADGROUP reply for one stream (an empty list on a BLOCK timeout).
    static func streamEntries(_ reply: RedisReply, _ url: RedisStreamURL) throws -> [(id: String, fields: [[UInt8]]?)] {
        guard case .array(let streams) = reply else { return [] }
        for s in streams {
            guard case .array(let pair) = s, pair.count == 2 else { continue }
            return try entries(pair[1], url)
        }
        return []
    }

    /// `[[id, [field, value, ...]], ...]`; the fields are nil for an entry deleted since.
    static func entries(_ reply: RedisReply, _ url: RedisStreamURL) throws -> [(id: String, fields: [[UInt8]]?)] {
        guard case .array(let list) = reply else { return [] }
        return try list.map { e in
            guard case .array(let parts) = e, parts.count == 2, let id = parts[0].text else {
                throw PipelineError(.io, "redis stream '\(url.stream)' at \(url.endpoint): an entry in a form this version does not read")
            }
            guard case .array(let values) = parts[1] else { return (id, nil) }
            return (id, values.map { if case .string(let b) = $0 { b } else { [] } })
        }
    }
}

/// The run stopped reading while Redis could not be reached.
private struct StoppedWaiting: Error {}
