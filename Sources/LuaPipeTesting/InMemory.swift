import LuaPipeCore

/// A source that serves records from memory, `batchSize` at a time (for tests).
public final class ArraySource: RecordSource {
    private let batches: Locked<[[InputEvent]]>

    /// `asTapes`: hands the records on as tapes, the form the JSON reader and Lua plugins
    /// give them in (native plugins that work on tapes take another path then).
    public init(_ records: [Record], batchSize: Int = 256, asTapes: Bool = false) {
        var events: [[InputEvent]] = []
        var n = 0
        var i = 0
        while i < records.count {
            let slice = records[i..<min(records.count, i + batchSize)]
            events.append(slice.map { r in
                n += 1
                return .record(asTapes ? Item(number: n, tape: Tape(r)) : Item(number: n, record: r))
            })
            i += batchSize
        }
        batches = Locked(events)
    }

    public func nextBatch(stop: StopFlag) async throws -> [InputEvent]? {
        if stop.isSet { return nil }
        return batches.withLock { $0.isEmpty ? nil : $0.removeFirst() }
    }
}

/// A source that never ends by itself: it yields one record every `interval` until stopped.
public final class EndlessSource: RecordSource {
    private let interval: Duration
    private let count = Locked(0)
    public init(every interval: Duration) { self.interval = interval }

    public func nextBatch(stop: StopFlag) async throws -> [InputEvent]? {
        if stop.isSet { return nil }
        try? await Task.sleep(for: interval)
        if stop.isSet { return nil }
        let n = count.withLock { $0 += 1; return $0 }
        return [.record(Item(number: n, record: ["n": .int(Int64(n))]))]
    }
}

/// A sink that keeps what it gets (for tests).
public final class CollectingSink: RecordSink, DeadLetterSink {
    // Records as they are written (decoded on the writer's side, as a Swift sink would), and
    // the items too when `lines` is wanted.
    private let items = Locked<(records: [Record], items: [Item])>(([], []))
    private let keepLines: Bool
    /// `keepLines`: also keep what `lines` needs (every item, until the sink goes).
    public init(keepLines: Bool = true) { self.keepLines = keepLines }
    public func write(_ batch: [Item]) async throws {
        let records = batch.map(\.record)
        items.withLock {
            $0.records += records
            if keepLines { $0.items += batch }
        }
    }
    public func write(_ envelope: Record) async throws {
        items.withLock {
            $0.records.append(envelope)
            if keepLines { $0.items.append(Item(number: 0, record: envelope)) }
        }
    }
    public func close() async throws {}
    public var records: [Record] { items.withLock { $0.records } }
    /// The records as JSON lines, written as `luapipe run` writes them (from the tape, when
    /// one arrived), for exact comparisons.
    public var lines: [String] {
        precondition(keepLines, "CollectingSink(keepLines: false) keeps no lines")
        return items.withLock { $0.items }.map { item in
            var out: [UInt8] = []
            item.writeJSON(to: &out)
            return String(decoding: out, as: UTF8.self)
        }
    }
}
