import Synchronization

/// What a plugin's `on_error` says to do with a record whose call failed (docs/reference.md).
public enum ErrorPolicy: String, Sendable, CaseIterable {
    case fail, skip, drop
    case deadLetter = "dead-letter"
}

/// Makes one plugin instance (numbered from 0) for the context it will get. Called in
/// pipeline order before the first record is read.
public typealias PluginFactory = @Sendable (_ instance: Int, _ context: PluginContext) async throws -> any Plugin

/// A predicate over records (the manifest's `when`), made per stage.
public protocol RecordFilter: AnyObject {
    /// One answer per item: true runs the plugin, false passes the record by.
    func test(_ items: [Item]) async throws -> [Bool]
    func close() async
}

public typealias FilterFactory = @Sendable () async throws -> any RecordFilter

/// One manifest entry, resolved: everything the pipeline needs to run it.
public struct StageSpec: Sendable {
    public var info: PluginInfo
    /// "lua", "swift" (async) or "swift-sync": shown in stats, never used to decide anything.
    public var kind: String
    public var config: Value
    public var instances: Int
    public var onError: ErrorPolicy
    public var maxErrors: Int?
    public var tick: Duration?
    public var limits: CallLimits
    public var makeInstance: PluginFactory
    /// The `when` predicate, for plugins that do not evaluate it themselves.
    public var makeFilter: FilterFactory?

    public init(info: PluginInfo, kind: String, config: Value = .object(Record()), instances: Int = 1,
                onError: ErrorPolicy = .fail, maxErrors: Int? = nil, tick: Duration? = nil,
                limits: CallLimits = CallLimits(), makeFilter: FilterFactory? = nil,
                makeInstance: @escaping PluginFactory) {
        self.info = info
        self.kind = kind
        self.config = config
        self.instances = max(1, instances)
        self.onError = onError
        self.maxErrors = maxErrors
        self.tick = tick
        self.limits = limits
        self.makeFilter = makeFilter
        self.makeInstance = makeInstance
    }
}

/// Where the records come from. `nextBatch` returns what is available now (at least one
/// event, at most a batch), or nil at the end of input or once `stop` is set.
public protocol RecordSource: Sendable {
    func nextBatch(stop: StopFlag) async throws -> [InputEvent]?
}

/// A source whose records must be acknowledged once done (a Redis stream read through a
/// consumer group: docs/reference.md, "Redis streams").
///
/// - Important: `acknowledge(through:)` is called by the pipeline's writer, in input order,
///   once every record numbered up to `number` has been dealt with: what it produced (outputs,
///   emits, dead letters) was written, or it was dropped. It is never called for a record that
///   failed or was abandoned, nor for any record after it.
public protocol AcknowledgingSource: RecordSource {
    func acknowledge(through number: Int) async
}

public enum InputEvent: Sendable {
    case record(Item)
    /// A line that is not a record: its line number, its record number, text and error. A
    /// source without lines (a stream) gives line 0 and says where in `error`.
    case invalid(line: Int, number: Int, text: [UInt8], error: String)
}

extension InputEvent {
    /// The record number the event holds.
    public var number: Int {
        switch self {
        case .record(let item): item.number
        case .invalid(_, let number, _, _): number
        }
    }
}

/// Where records go. `write` may throw `PipelineError(.io)`; an `outputClosed` error ends the
/// run quietly (a reader such as `head` went away).
public protocol RecordSink: Sendable {
    func write(_ items: [Item]) async throws
    func close() async throws
    /// Records of the write in progress whose lines are out whole: a forced shutdown that finds
    /// the write stuck (a pipe nobody reads) counts them as written. 0 when not known.
    var wholeInProgress: Int { get }
}

extension RecordSink {
    public var wholeInProgress: Int { 0 }
}

/// A sink that failed part-way through a batch: the first `written` records of it were
/// written whole before `error`.
public struct PartialWrite: Error, Sendable {
    public var written: Int
    public var error: PipelineError
    public init(written: Int, error: PipelineError) {
        self.written = written
        self.error = error
    }
}

/// Where records that failed under `dead-letter` go, as envelopes.
public protocol DeadLetterSink: Sendable {
    func write(_ envelope: Record) async throws
    func close() async throws
}

/// A flag any thread may set to ask the run to stop.
///
/// Two strengths: a failure under `fail` only stops reading (the records before it still go
/// through and are written); a signal, a closed output or a cancelled task also halts the
/// work in flight (batches stop between records, queued ones are abandoned).
///
/// A third, for stream input: a signal that drains (`drain(signal:)`) stops reading and lets
/// everything read go through, so it can be acknowledged; `set(signal:)` later halts it.
public final class StopFlag: Sendable {
    private static let failure: Int32 = -1, halt: Int32 = -2, drainBase: Int32 = -1000
    // An atomic, not a lock: every call of every record reads it.
    private let flag = Atomic<Int32>(0)
    public init() {}
    /// Asks the run to stop and halt; `signal` is the reason (e.g. SIGINT), 0 for none.
    public func set(signal: Int32 = 0) {
        let value = signal == 0 ? Self.halt : signal
        var current = flag.load(ordering: .acquiring)
        while current == 0 || current == Self.failure || current < Self.drainBase {
            let (done, now) = flag.compareExchange(expected: current, desired: value, ordering: .acquiringAndReleasing)
            if done { return }
            current = now
        }
    }
    /// Asks the run to stop reading only, for `signal`: what was read still goes through.
    public func drain(signal: Int32) {
        var current = flag.load(ordering: .acquiring)
        while current == 0 || current == Self.failure {
            let (done, now) = flag.compareExchange(expected: current, desired: Self.drainBase - signal, ordering: .acquiringAndReleasing)
            if done { return }
            current = now
        }
    }
    /// Asks the run to stop reading only (a record failed under `fail`).
    public func setFailed() { _ = flag.compareExchange(expected: 0, desired: Self.failure, ordering: .acquiringAndReleasing) }
    public var isSet: Bool { flag.load(ordering: .acquiring) != 0 }
    /// True when the work in flight is to stop too, not only reading.
    public var halts: Bool {
        let v = flag.load(ordering: .acquiring)
        return v > 0 || v == Self.halt
    }
    /// The signal that stopped the run, if a signal did.
    public var signal: Int32? {
        let v = flag.load(ordering: .acquiring)
        if v > 0 { return v }
        return v < Self.drainBase ? Self.drainBase - v : nil
    }
}
