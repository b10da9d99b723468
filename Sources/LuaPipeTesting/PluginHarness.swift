import LuaPipe
import LuaPipeCore
import LuaRuntime
import Logging

/// Runs one plugin (Lua, sync Swift or async Swift) over records in a unit test, in one call,
/// through the real lifecycle (setup, process, flush, teardown), and captures what it did.
public enum PluginHarness {
    public struct Run: Sendable {
        /// Every record that came out, flush emits included, in order.
        public var outputs: [Record]
        /// The error that stopped the run (under `fail`), if any.
        public var error: PipelineError?
        /// What the plugin logged, as "level: message".
        public var logs: [String]
        public var shared: SharedStore
        public var stats: RunStats
    }

    /// An async Swift plugin. `store`: the run's shared store when it lives outside the process
    /// (a `RedisSharedStore`); the plugin reaches it as `context.store`.
    public static func run(_ make: @escaping @Sendable (PluginContext) throws -> any Plugin, config: Value = .object(Record()),
                           records: [Record], shared: SharedStore = SharedStore(), store: (any RemoteSharedStore)? = nil,
                           onError: ErrorPolicy = .fail, timeout: Duration = .seconds(10)) async -> Run {
        await run(kind: "swift", config: config, records: records, shared: shared, store: store, onError: onError,
                  timeout: timeout) { _, ctx in
            try make(ctx)
        }
    }

    /// A synchronous Swift plugin (it runs on a worker thread, as in a pipeline).
    public static func run(sync make: @escaping @Sendable (PluginContext) throws -> any SyncPlugin, config: Value = .object(Record()),
                           records: [Record], shared: SharedStore = SharedStore(), onError: ErrorPolicy = .fail) async -> Run {
        let worker = WorkerThread(name: "harness")
        defer { worker.shutdown() }
        return await run(kind: "swift-sync", config: config, records: records, shared: shared, onError: onError) { _, ctx in
            try await SyncPluginAdapter(on: worker) { try make(ctx) }
        }
    }

    /// A Lua plugin file.
    /// - Parameter onLog: called on the thread that logs, for each line (tests of threading).
    public static func run(lua path: String, config: Value = .object(Record()), records: [Record],
                           shared: SharedStore = SharedStore(), store: (any RemoteSharedStore)? = nil,
                           onError: ErrorPolicy = .fail, onLog: (@Sendable () -> Void)? = nil) async -> Run {
        let worker = WorkerThread(name: "harness")
        defer { worker.shutdown() }
        let source = await worker.run { () -> Result<LuaPluginSource, PipelineError> in
            do { return .success(try LuaPluginSource.inspect(path: path)) } catch {
                return .failure(PipelineError.wrap(error, plugin: path, recordNumber: nil))
            }
        }
        switch source {
        case .failure(let e):
            return Run(outputs: [], error: e, logs: [], shared: shared, stats: RunStats())
        case .success(let src):
            return await run(kind: "lua", name: src.name, config: config, records: records, shared: shared, store: store,
                             onError: onError, onLog: onLog) { _, ctx in
                LuaPlugin(source: src, settings: .init(options: .init(root: src.folder)), context: ctx, on: worker)
            }
        }
    }

    static func run(kind: String, name: String = "plugin", config: Value, records: [Record], shared: SharedStore,
                    store: (any RemoteSharedStore)? = nil, onError: ErrorPolicy, timeout: Duration = .seconds(10), onLog: (@Sendable () -> Void)? = nil,
                    make: @escaping PluginFactory) async -> Run {
        let logs = Locked<[String]>([])
        let logger = Logger(label: "harness") { _ in CapturingLogHandler(logs, onLog: onLog) }
        let spec = StageSpec(info: PluginInfo(id: name, name: name, version: "0"), kind: kind, config: config,
                             onError: onError, limits: CallLimits(timeout: timeout), makeInstance: make)
        let sink = CollectingSink(keepLines: false)  // the harness gives records
        do {
            let outcome = try await Pipeline(stages: [spec], shared: shared, store: store, logger: logger)
                .run(source: ArraySource(records), sink: sink, deadLetter: sink)
            return Run(outputs: sink.records, error: outcome.error, logs: logs.withLock { $0 }, shared: shared, stats: outcome.stats)
        } catch {
            return Run(outputs: sink.records, error: error, logs: logs.withLock { $0 }, shared: shared, stats: RunStats())
        }
    }
}

/// Keeps log lines in memory.
struct CapturingLogHandler: LogHandler {
    let lines: Locked<[String]>
    let onLog: (@Sendable () -> Void)?
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    init(_ lines: Locked<[String]>, onLog: (@Sendable () -> Void)? = nil) {
        self.lines = lines
        self.onLog = onLog
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        onLog?()
        lines.withLock { $0.append("\(level): \(message)") }
    }
}
