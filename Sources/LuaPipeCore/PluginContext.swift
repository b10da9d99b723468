import Logging

/// Who a plugin instance is.
public struct PluginInfo: Sendable, Hashable {
    /// The instance id from the manifest (default: the plugin's name).
    public var id: String
    public var name: String
    public var version: String
    public init(id: String, name: String, version: String) {
        self.id = id
        self.name = name
        self.version = version
    }
}

/// The context a plugin instance gets: its config, a log, the shared store and `emit`.
/// One per instance; the pipeline begins and ends each call on it.
public final class PluginContext: Sendable {
    public let info: PluginInfo
    public let config: Value
    /// The in-process store, synchronous. When the run's store is elsewhere (Redis), this
    /// one refuses (`SharedStore.refusal`): use `store`.
    public let shared: SharedStore
    /// The run's shared store, wherever it lives (`shared:` in the manifest): await it.
    public let store: any SharedStoreProtocol
    public let logger: Logger
    /// The run's host budget, for adapters that check what a call hands over (Lua).
    public let budget: HostBudget?
    /// The run's tracer (`--trace`), for adapters that record waits.
    public let tracer: Tracer?
    private let state = Locked<(recordNumber: Int, emitted: [Item])>((0, []))
    private let deadline = Locked<ContinuousClock.Instant?>(nil)
    private let lifecycleLedger = Locked<Ledger?>(nil)

    public init(info: PluginInfo, config: Value = .object(Record()), shared: SharedStore = SharedStore(),
                store: (any SharedStoreProtocol)? = nil,
                logger: Logger = Logger(label: "luapipe"), budget: HostBudget? = nil, tracer: Tracer? = nil) {
        self.info = info
        self.store = store ?? shared
        self.budget = budget
        self.tracer = tracer
        self.config = config
        self.shared = shared
        var l = logger
        l[metadataKey: "plugin"] = "\(info.id)"
        self.logger = l
    }

    /// A context for one call of a plugin that runs several calls at once (`ConcurrentPlugin`):
    /// the same config, log, shared store and budget, its own record number and emits.
    public func forCall(recordNumber: Int) -> PluginContext {
        let c = PluginContext(self)
        c.begin(recordNumber: recordNumber)
        return c
    }

    private init(_ parent: PluginContext) {
        info = parent.info
        config = parent.config
        shared = parent.shared
        store = parent.store
        logger = parent.logger
        budget = parent.budget
        tracer = parent.tracer
    }

    /// 1-based number of the input record the current call stems from (0 in tick/flush).
    public var recordNumber: Int { state.withLock { $0.recordNumber } }

    /// Sends an extra record downstream, after those emitted before it and before the record
    /// the current call returns.
    public func emit(_ record: Record) {
        state.withLock { $0.emitted.append(Item(number: $0.recordNumber, record: record)) }
    }

    /// Emits a record already in tape form (adapters).
    public func emit(tape: Tape) {
        state.withLock { $0.emitted.append(Item(number: $0.recordNumber, tape: tape)) }
    }

    /// Starts a call (the pipeline and adapters call this).
    public func begin(recordNumber: Int) {
        state.withLock { $0 = (recordNumber, []) }
    }

    /// Ends a call and returns what it emitted.
    public func end() -> [Item] {
        state.withLock { s in
            let e = s.emitted
            s.emitted = []
            return e
        }
    }

    /// Set by the pipeline around setup, tick, flush and teardown when a call must end
    /// before the instance's own timeout would end it (the shutdown budget). Adapters that
    /// enforce their own deadline (Lua) use the earlier of the two.
    public var callDeadline: ContinuousClock.Instant? {
        get { deadline.withLock { $0 } }
        set { deadline.withLock { $0 = newValue } }
    }

    /// True once `callDeadline` has passed: a long lifecycle call of a synchronous plugin
    /// (loading a table in setup) checks it now and then and gives up.
    public var pastDeadline: Bool {
        guard let end = callDeadline else { return false }
        return ContinuousClock.now >= end
    }

    /// Where setup, tick, flush and teardown charge what they hand over to the host budget
    /// (set by the pipeline around those calls; process calls use `CallLimits.ledger`).
    public var ledger: Ledger? {
        get { lifecycleLedger.withLock { $0 } }
        set { lifecycleLedger.withLock { $0 = newValue } }
    }

    /// The time the current lifecycle call may take: `timeout`, or less when `callDeadline`
    /// comes first (at least a millisecond, so a call is never made with no time at all).
    public func timeout(_ timeout: Duration) -> Duration {
        guard let end = callDeadline else { return timeout }
        return max(.milliseconds(1), min(timeout, end - .now))
    }

    /// The config as a record (an empty one when the manifest gave none).
    public var configRecord: Record { config.objectValue ?? Record() }
}
