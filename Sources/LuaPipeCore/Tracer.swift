/// Collects plugin calls as Chrome trace events (`--trace FILE`; open it in Perfetto).
///
/// One event per call the pipeline makes: a batch of records through `process` is one event
/// (with the record count in its args), so tracing costs a lock and an append per batch, not
/// per record. Each worker thread is a track; async plugins share one. Waits (a Lua call's
/// `luapipe.sleep`, `luapipe.http.request` or `ctx.call`, a `ConcurrentPlugin` call in
/// flight) overlap, so each is an async event of its own (category "wait", with the record
/// number), which Perfetto draws on tracks of their own.
public final class Tracer: Sendable {
    struct Event {
        var name: String
        var plugin: String
        var track: String
        var start: Duration
        var duration: Duration
        var records: Int
        /// A wait: an async event with this id (0: a call on `track`).
        var wait: Int = 0
    }

    private let events = Locked<(kept: [Event], dropped: Int)>(([], 0))
    /// The most events a trace keeps (the first ones): a trace is read by a person, and a
    /// long run must not grow the process without bound (docs/reference.md).
    public static let maxEvents = 200_000
    private let origin = ContinuousClock.now

    public init() {}

    /// Times `body` and records it as one event.
    func span<T>(_ name: String, plugin: String, track: String, records: Int = 0, _ body: () async throws -> T) async rethrows -> T {
        let start = ContinuousClock.now
        defer {
            let e = Event(name: name, plugin: plugin, track: track, start: start - origin,
                          duration: ContinuousClock.now - start, records: records)
            keep(e)
        }
        return try await body()
    }

    private let waits = Locked(0)

    /// Records a wait of record `record` from `start` to now.
    /// A wait's name as kept: a plugin chooses `ctx.call`'s name, and 4,000 names of 256 KiB
    /// took a gigabyte (sixth blind round).
    static func kept(_ name: String) -> String {
        name.utf8.count <= 200 ? name : String(decoding: name.utf8.prefix(200), as: UTF8.self) + "..."
    }

    public func wait(_ name: String, plugin: String, record: Int, since start: ContinuousClock.Instant) {
        let name = Self.kept(name)
        let id = waits.withLock { $0 += 1; return $0 }
        let e = Event(name: name, plugin: plugin, track: "", start: start - origin, duration: ContinuousClock.now - start,
                      records: record, wait: id)
        keep(e)
    }

    private func keep(_ e: Event) {
        events.withLock {
            if $0.kept.count < Self.maxEvents { $0.kept.append(e) } else { $0.dropped += 1 }
        }
    }

    /// The trace-event JSON document, written one event at a time (no tree of them all).
    public func json() -> [UInt8] {
        var all: [UInt8] = []
        write { all += $0; return true }
        return all
    }

    /// The same document handed to `sink` in pieces of about 1 MiB, so that it is never held
    /// whole (200,000 events with long ids made 100 MB); `sink` returns false to stop.
    public func write(_ sink: ([UInt8]) -> Bool) {
        let (all, dropped) = events.withLock { ($0.kept, $0.dropped) }
        var out = Array(#"{"displayTimeUnit":"ms","traceEvents":["#.utf8)
        var first = true
        var open = true
        func add(_ event: Value) {
            guard open else { return }
            if !first { out.append(44) }
            first = false
            JSONWriter.write(Tape(event), to: &out)
            if out.count >= 1 << 20 {
                open = sink(out)
                out.removeAll(keepingCapacity: true)
            }
        }
        var tracks: [String: Int] = [:]
        for e in all where e.wait == 0 && tracks[e.track] == nil { tracks[e.track] = tracks.count + 1 }
        for (name, tid) in tracks.sorted(by: { $0.value < $1.value }) {
            add(.object(["name": "thread_name", "ph": "M", "pid": 1, "tid": .int(Int64(tid)), "args": .object(["name": .string(name)])]))
        }
        for e in all where e.wait > 0 {
            let args: Value = .object(["plugin": .string(e.plugin), "record": .int(Int64(e.records))])
            for (ph, at) in [("b", e.start), ("e", e.start + e.duration)] {
                add(.object([
                    "name": .string(e.name), "cat": "wait", "ph": .string(ph), "pid": 1, "id": .int(Int64(e.wait)),
                    "ts": .double(Double(at.nanoseconds) / 1000), "args": args,
                ]))
            }
        }
        for e in all where e.wait == 0 {
            var args: Record = ["plugin": .string(e.plugin)]
            if e.records > 0 { args["records"] = .int(Int64(e.records)) }
            add(.object([
                "name": .string(e.name), "cat": "plugin", "ph": "X", "pid": 1, "tid": .int(Int64(tracks[e.track]!)),
                "ts": .double(Double(e.start.nanoseconds) / 1000), "dur": .double(Double(e.duration.nanoseconds) / 1000),
                "args": .object(args),
            ]))
        }
        if dropped > 0 {
            add(.object(["name": .string("luapipe: \(dropped) events past the first \(Self.maxEvents) were not kept"),
                         "ph": "i", "s": "g", "pid": 1, "tid": 0,
                         "ts": .double(Double((all.last?.start ?? .zero).nanoseconds) / 1000)]))
        }
        out.append(contentsOf: Array("]}\n".utf8))
        if open { _ = sink(out) }
    }
}

extension Optional where Wrapped == Tracer {
    /// Runs `body`, as a traced span when there is a tracer.
    func span<T>(_ name: String, plugin: String, track: String, records: Int = 0, _ body: () async throws -> T) async rethrows -> T {
        guard let tracer = self else { return try await body() }
        return try await tracer.span(name, plugin: plugin, track: track, records: records, body)
    }
}

/// A plugin whose calls run on one worker thread (Lua, sync Swift): its trace track.
public protocol WorkerBound {
    var worker: WorkerThread { get }
}

extension Instance {
    var track: String { (plugin as? any WorkerBound)?.worker.name ?? "async plugins" }
}
