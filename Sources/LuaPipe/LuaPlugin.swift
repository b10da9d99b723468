import LuaPipeCore
import LuaRuntime

/// Presents a Lua plugin file as a `Plugin`. Its state lives on one worker thread; a batch of
/// records crosses to it in one hop, and each record is marshalled once each way (as a tape,
/// built and walked in C).
///
/// - Important: an instance whose call broke a limit (time, memory, interrupt) is torn down as
///   far as it safely can be and replaced by a fresh one (setup again) before its next record.
public final class LuaPlugin: WorkerPlugin {
    public struct Settings: Sendable {
        public var options: LuaState.Options
        public var when: String?
        /// The manifest's `timeout_ms`, for setup, tick, flush and teardown.
        public var timeout: Duration
        /// What the plugin's waits go to (luapipe.sleep, luapipe.http.request, ctx.call).
        public var waits: LuaWaits
        /// The interrupt of the instance's live state (set and cleared on its thread, used
        /// from any thread by `interrupt()`): never one of a closed state.
        let interruptSlot = Locked<LuaState.Interrupt?>(nil)
        /// Cancels the blocking wait in progress, if any (setup, tick, flush, teardown).
        let waitSlot = Locked<(@Sendable () -> Void)?>(nil)
        public init(options: LuaState.Options = .init(), when: String? = nil, timeout: Duration = .seconds(10),
                    waits: LuaWaits = LuaWaits()) {
            self.options = options
            self.when = when
            self.timeout = timeout
            self.waits = waits
        }
    }

    public let source: LuaPluginSource
    let settings: Settings
    let confined: ThreadConfined<LuaInstance?>
    let context: PluginContext

    /// The records' calls run as coroutines (the file names a function that waits, or
    /// ctx.shared while the run's store is outside the process).
    let waiting: Bool

    /// A plugin that waits runs as a stage of its own, with many records in flight.
    public var fusable: Bool { !waiting }

    /// Stops the call that runs now at its next instruction (from any thread).
    public func interrupt() {
        settings.interruptSlot.withLock { $0?() }
        settings.waitSlot.withLock { $0?() }
    }
    private var timeout: Duration { settings.timeout }

    public var worker: WorkerThread { confined.worker }

    public init(source: LuaPluginSource, settings: Settings, context: PluginContext, on worker: WorkerThread) {
        self.source = source
        self.context = context
        var settings = settings
        settings.options.sharedWaits = context.store is any RemoteSharedStore
        self.settings = settings
        waiting = source.waits || (settings.options.sharedWaits && source.namesShared)
        confined = ThreadConfined(nil, on: worker)
    }

    private func onWorker<T: Sendable>(_ body: @escaping @Sendable (inout LuaInstance?) throws -> T) async throws -> T {
        let confined = self.confined
        return try await confined.worker.run { try confined.withValue { try body(&$0) } }
    }

    public func setup(_ context: PluginContext) async throws {
        let (source, settings, timeout) = (self.source, self.settings, self.timeout)
        try await onWorker { instance in
            do {
                instance = try LuaInstance(source: source, settings: settings, context: context, timeout: timeout)
            } catch let e as LuaError {
                throw Self.error(e, context, nil)
            }
        }
    }

    public func process(_ record: Record, _ context: PluginContext) async throws -> Disposition {
        let results = await processBatch([Item(number: context.recordNumber, record: record)], context, CallLimits(timeout: timeout))
        switch results.first {
        case .done(let record?, _)?: return .replace(record.record)
        case .done(nil, _)?: return .drop
        case .failed(let e)?: throw e
        case .abandoned?: throw PipelineError(.cancelled, "cancelled: the run is stopping", plugin: context.info.id)
        case nil: return .pass
        }
    }

    public func processBatch(_ items: [Item], _ context: PluginContext, _ limits: CallLimits) async -> [ItemResult] {
        if waiting { return await processWaiting(items, context, limits) }
        let (confined, source, settings) = (self.confined, self.source, self.settings)
        return await confined.worker.run { Self.process(confined, source, settings, items, context, limits) }
    }

    public func processOnWorker(_ items: [Item], _ context: PluginContext, _ limits: CallLimits) -> [ItemResult] {
        Self.process(confined, source, settings, items, context, limits)
    }

    private static func process(_ confined: ThreadConfined<LuaInstance?>, _ source: LuaPluginSource, _ settings: Settings,
                                _ items: [Item], _ context: PluginContext, _ limits: CallLimits) -> [ItemResult] {
        confined.withValue { slot in
            var results: [ItemResult] = []
            results.reserveCapacity(items.count)
            let handOver = limits.ledger.map { l in { (n: Int) in l.charge(n) } }  // made once per batch
            for item in items {
                if limits.stopping {  // the run is stopping: the rest are never called
                    results.append(.abandoned)
                    continue
                }
                guard let instance = slot else {
                    results.append(.failed(PipelineError(.plugin, "the instance could not be rebuilt", plugin: context.info.id)))
                    continue
                }
                do {
                    results.append(try instance.process(item, timeout: limits.timeout, handOver: handOver))
                } catch let e as LuaError {
                    results.append(.failed(Self.error(e, context, item.number)))
                    if e.brokeLimit {
                        slot = Self.rebuild(instance, source: source, settings: settings, context: context, timeout: limits.timeout)
                    }
                } catch {
                    results.append(.failed(PipelineError.wrap(error, plugin: context.info.id, recordNumber: item.number)))
                }
            }
            return results
        }
    }

    /// Replaces a broken instance: teardown of the old one (errors ignored), then a new state
    /// and setup. Nil when the new one cannot be made (its records then fail).
    static func rebuild(_ old: LuaInstance, source: LuaPluginSource, settings: Settings, context: PluginContext,
                        timeout: Duration) -> LuaInstance? {
        old.state.clearInterrupt()
        old.teardown(timeout: timeout)
        do {
            return try LuaInstance(source: source, settings: settings, context: context, timeout: timeout)
        } catch {
            context.logger.error("could not replace the instance after it broke a limit: \(error)")
            return nil
        }
    }

    static func error(_ e: LuaError, _ context: PluginContext, _ number: Int?) -> PipelineError {
        let code: PipelineError.Code = switch e.code {
        case .timeout, .waitTimeout: .timeout
        case .memory, .hostMemory: .memory
        case .interrupted: .cancelled
        default: .plugin
        }
        let location = e.file.map { f in e.line.map { "\(f):\($0)" } ?? f }
        return PipelineError(code, e.message, plugin: context.info.id, location: location, traceback: e.traceback,
                             recordNumber: number.flatMap { $0 > 0 ? $0 : nil })
    }

    private func lifecycle(_ name: String) async throws {
        let context = self.context
        let timeout = context.timeout(self.timeout)
        let emits = try await onWorker { slot -> [Tape] in
            guard let instance = slot else { return [] }
            do {
                return try instance.call(name, timeout: timeout, ledger: context.ledger)
            } catch let e as LuaError {
                throw Self.error(e, context, nil)
            }
        }
        for t in emits { context.emit(tape: t) }
    }

    /// Loads and sets up the file's current code on the worker, between records; swaps it in
    /// and tears the old instance down only when that worked. Otherwise logs and keeps the old.
    /// While records wait in the old instance (a plugin that waits), their calls live in its
    /// state: the swap is left to their driver, which starts no more records in it and swaps
    /// once they are out (docs/reference.md, "The command line").
    public func reload() async {
        let (source, settings, context, timeout) = (self.source, self.settings, self.context, self.timeout)
        await confined.worker.run { [confined] in
            confined.withValue { slot in
                if let instance = slot, !instance.tasks.isEmpty {
                    instance.reloadPending = true
                } else {
                    Self.swapIn(&slot, source, settings, context, timeout)
                }
            }
        }
    }

    /// On the worker, with no call in flight in `slot`: a new instance of the file's current
    /// code replaces it, or (when that fails) it stays and the error is logged.
    static func swapIn(_ slot: inout LuaInstance?, _ source: LuaPluginSource, _ settings: Settings,
                       _ context: PluginContext, _ timeout: Duration) {
        slot?.reloadPending = false
        do {
            let new = try LuaInstance(source: source, settings: settings, context: context, timeout: timeout)
            slot?.teardown(timeout: timeout)
            slot = new
            context.logger.info("reloaded \(source.path)")
        } catch {
            context.logger.error("reload of \(source.path) failed, the running version stays: \(error)")
        }
    }

    public func tick(_ context: PluginContext) async throws { try await lifecycle("tick") }
    public func flush(_ context: PluginContext) async throws { try await lifecycle("flush") }

    public func teardown(_ context: PluginContext) async {
        let timeout = context.timeout(self.timeout)
        _ = try? await onWorker { slot in
            slot?.teardown(timeout: timeout)
            slot = nil  // lua_close runs here, on the state's own thread
        }
    }
}

/// One Lua state with a loaded plugin. Lives and dies on one worker thread.
final class LuaInstance {
    let state: LuaState
    let table: LuaRef
    let process: LuaRef
    let when: LuaRef?
    private var functions: [String: LuaRef] = [:]
    private let context: PluginContext
    /// Records' calls in flight (by the driver's slot), and finished tasks kept for reuse.
    var tasks: [Int: LuaTask] = [:]
    var spare: [LuaTask] = []
    /// The file changed while calls were in flight here: no more start, and once they are out
    /// the driver swaps in the new code (`LuaPlugin.swapIn`).
    var reloadPending = false

    private let interruptSlot: Locked<LuaState.Interrupt?>

    deinit {  // on the state's thread, before the state closes
        interruptSlot.withLock { $0 = nil }
        releaseAll()
    }

    init(source: LuaPluginSource, settings: LuaPlugin.Settings, context: PluginContext, timeout: Duration) throws {
        self.context = context
        let logger = context.logger
        let host = LuaHost(shared: context.shared) { level, message in
            switch level {
            case "debug": logger.debug("\(message)")
            case "warn": logger.warning("\(message)")
            case "error": logger.error("\(message)")
            default: logger.info("\(message)")
            }
        }
        var options = settings.options
        options.root = options.root ?? source.folder
        state = try LuaState(options: options, host: host)
        // Calls that are not tasks (setup, tick, flush, teardown, a plugin fused with others)
        // wait by blocking this thread.
        let (waits, waitSlot) = (settings.waits, settings.waitSlot)
        state.setBlockingWait { waits.block($0, context, cancel: waitSlot) }
        interruptSlot = settings.interruptSlot
        // Interruptible from here on (a halting run's setup); cleared in deinit, or below if
        // this instance is not made after all, before the state closes.
        let handle = state.interrupt
        interruptSlot.withLock { $0 = handle }
        do {
            table = try state.load(file: source.path, timeout: timeout)
            let now = try LuaPluginSource.check(state, table, path: source.path)
            guard now.name == source.name else {  // the file was edited (--watch) or replaced
                throw PipelineError(.plugin, "\(source.path) now declares name '\(now.name)', not '\(source.name)'")
            }
            process = state.refField(table, "process")!
            for f in ["setup", "tick", "flush", "teardown"] {
                if let r = state.refField(table, f) { functions[f] = r }
            }
            if let expr = settings.when {
                when = try state.load(LuaWhen.chunk(expr), chunkName: "=when", timeout: timeout)
            } else {
                when = nil
            }
            try state.setContext("config", Tape(context.config.objectValue.map { Value.object($0) } ?? context.config))
            try state.setContext("plugin", Tape(Value.object([
                "id": .string(context.info.id), "name": .string(context.info.name), "version": .string(context.info.version),
            ])))
            if let setup = functions["setup"] {
                _ = try state.call(setup, arg: Tape(context.config), mode: .ignore, timeout: timeout)
            }
        } catch {
            interruptSlot.withLock { $0 = nil }
            throw error
        }
    }

    func process(_ item: Item, timeout: Duration, handOver: ((Int) -> Bool)?) throws -> ItemResult {
        let out = try state.call(process, arg: item.tape, mode: .record, when: when, allowEmit: true,
                                 recordNumber: item.number, timeout: timeout, handOver: handOver)
        let emitted = out.emits.map { Item(number: item.number, tape: $0) }
        switch out.result {
        case .pass, .replace: return .done(record: Item(number: item.number, tape: out.output!), emitted: emitted)
        case .drop: return .done(record: nil, emitted: emitted)
        default: return .done(record: item, emitted: emitted)  // skipped by `when`
        }
    }

    /// Calls tick or flush; returns what it emitted.
    func call(_ name: String, timeout: Duration, ledger: Ledger? = nil) throws -> [Tape] {
        guard let fn = functions[name] else { return [] }
        return try state.call(fn, mode: .ignore, allowEmit: true, timeout: timeout,
                              handOver: ledger.map { l in { l.charge($0) } }).emits
    }

    func teardown(timeout: Duration) {
        guard let fn = functions["teardown"] else { return }
        do {
            _ = try state.call(fn, mode: .ignore, timeout: timeout)
        } catch {
            context.logger.error("teardown failed: \(error)")
        }
    }
}

/// The manifest's `when` expression, compiled as a function of `record`.
enum LuaWhen {
    static func chunk(_ expr: String) -> String {
        "return function(record) return (\n" + expr + "\n) end"
    }
}
