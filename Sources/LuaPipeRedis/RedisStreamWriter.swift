import Logging
import LuaPipeCore

/// Adds records to a Redis stream: `--output redis://...` and `--dead-letter redis://...`
/// (docs/reference.md, "Redis streams").
///
/// Each record is one XADD with its JSON in field `json`; a record that stems from an entry
/// of a stream input also carries `source_id` (that entry's id) and `source_index` (its place
/// among that entry's outputs), so a consumer downstream can drop duplicates. A batch's
/// XADDs go out pipelined, one round trip. `write` returns once Redis answered every one of
/// them OK: only then may the entries behind them be acknowledged.
/// - Important: a lost connection is retried with backoff until it works or the run halts;
///   an error reply (a stream of another type, out of memory) fails the write.
public final class RedisStreamWriter: RecordSink, DeadLetterSink, @unchecked Sendable {
    // Safe because the mutable state is the connection, confined to its own worker thread.
    public let url: RedisStreamURL
    private let connection: RedisConnection
    private let logger: Logger
    private let what: String
    /// The input entry id behind a record number (set when the input is a stream).
    private let sourceID: (@Sendable (Int) -> String?)?
    private let stop: StopFlag?
    /// The arguments every XADD starts with, made once: a record's XADD was a dozen arrays.
    private let head: [[UInt8]]
    private static let sourceIDKey = bytes("source_id"), sourceIndexKey = bytes("source_index"), zero = bytes("0")

    public init(url: RedisStreamURL, what: String, sourceID: (@Sendable (Int) -> String?)?, stop: StopFlag?,
                logger: Logger) {
        self.url = url
        self.what = what
        self.sourceID = sourceID
        self.stop = stop
        self.logger = logger
        var head = [bytes("XADD"), bytes(url.stream)]
        if let maxLen = url.maxLen { head += [bytes("MAXLEN"), bytes("~"), bytes("\(maxLen)")] }
        self.head = head + [bytes("*"), bytes("json")]
        connection = RedisConnection(url.endpoint, name: "luapipe-redis-\(what)")
    }

    public func write(_ items: [Item]) async throws {
        var commands: [[[UInt8]]] = []
        commands.reserveCapacity(items.count)
        var previous = 0, index = 0
        for item in items {
            var json: [UInt8] = []
            item.writeJSON(to: &json)
            // A record's outputs are next to each other in a batch, in order.
            index = item.number == previous ? index + 1 : 0
            previous = item.number
            commands.append(command(json, source: item.number, index: index))
        }
        try await send(commands)
    }

    /// A dead letter: its `record_number` names the input entry behind it.
    public func write(_ envelope: Record) async throws {
        var json: [UInt8] = []
        JSONWriter.write(Tape(envelope), to: &json)
        var number = 0
        if case .int(let n)? = envelope["record_number"] { number = Int(n) }
        do { try await send([command(json, source: number, index: nil)]) } catch let p as PartialWrite { throw p.error }
    }

    public func close() async throws {
        await connection.close()
    }

    private func command(_ json: [UInt8], source number: Int, index: Int?) -> [[UInt8]] {
        var args = head
        args.reserveCapacity(head.count + 5)
        args.append(json)
        if number > 0, let id = sourceID?(number) {
            args.append(Self.sourceIDKey)
            args.append(bytes(id))
            if let index {
                args.append(Self.sourceIndexKey)
                args.append(index == 0 ? Self.zero : bytes("\(index)"))
            }
        }
        return args
    }

    private func send(_ commands: [[[UInt8]]]) async throws {
        let replies = try await withRedisRetry("XADD of \(commands.count) entries to stream '\(url.stream)' at \(url.endpoint) (\(what))",
                                               stop: stop, logger: logger) {
            try await connection.pipeline(commands)
        }
        for (k, reply) in replies.enumerated() {
            if case .error(let e) = reply {
                // The entries before it were added: they count as written.
                throw PartialWrite(written: k, error: PipelineError(
                    .io, "redis refused XADD to stream '\(url.stream)' at \(url.endpoint) (\(what)): \(e)"))
            }
        }
    }
}
