/// Presents a blocking `SyncPlugin` as a `Plugin`: every call runs on the instance's worker
/// thread, never on Swift's cooperative pool, and a batch of records crosses in one hop.
///
/// - Important: a synchronous call cannot be preempted. A call that runs past `timeout_ms`
///   fails with a timeout error when it returns (its result is discarded); a call that never
///   returns holds its worker thread. Use an async plugin when a call may block for long.
public final class SyncPluginAdapter: WorkerPlugin {
    private let confined: ThreadConfined<any SyncPlugin>
    public var worker: WorkerThread { confined.worker }

    /// Makes the plugin on `worker` (its initializer runs there too).
    public init(on worker: WorkerThread, make: @escaping @Sendable () throws -> any SyncPlugin) async throws {
        let made = try await worker.run { UnsafeTransferBox(try make()) }
        confined = ThreadConfined(made.value, on: worker)
    }

    private func onWorker<T: Sendable>(_ body: @escaping @Sendable (any SyncPlugin) throws -> T) async throws -> T {
        let confined = self.confined
        return try await confined.worker.run { try confined.withValue { try body($0) } }
    }

    public func setup(_ context: PluginContext) async throws {
        try await onWorker { try $0.setup(context) }
    }

    public func process(_ record: Record, _ context: PluginContext) async throws -> Disposition {
        try await onWorker { try $0.process(record, context) }
    }

    public func tick(_ context: PluginContext) async throws { try await onWorker { try $0.tick(context) } }
    public func flush(_ context: PluginContext) async throws { try await onWorker { try $0.flush(context) } }
    public func teardown(_ context: PluginContext) async { _ = try? await onWorker { $0.teardown(context) } }

    public func processBatch(_ items: [Item], _ context: PluginContext, _ limits: CallLimits) async -> [ItemResult] {
        let confined = self.confined
        return await confined.worker.run { Self.process(confined, items, context, limits) }
    }

    public func processOnWorker(_ items: [Item], _ context: PluginContext, _ limits: CallLimits) -> [ItemResult] {
        Self.process(confined, items, context, limits)
    }

    private static func process(_ confined: ThreadConfined<any SyncPlugin>, _ items: [Item], _ context: PluginContext,
                                _ limits: CallLimits) -> [ItemResult] {
        let timeoutNanos = limits.timeout.nanoseconds
        return confined.withValue { plugin in
            let tapePlugin = plugin as? any TapeSyncPlugin
            var mark = ContinuousClock.now  // one clock read per call: its end starts the next
            return items.map { item in
                if limits.stopping { return .abandoned }  // the run is stopping
                context.begin(recordNumber: item.number)
                let started = mark
                let result: ItemResult
                do {
                    let record: Item?  // what goes on; nil: dropped
                    if let tapePlugin, case .tape(let tape) = item.payload {
                        record = try tapePlugin.process(tape: tape, context).map { Item(number: item.number, tape: $0) }
                    } else {
                        switch try plugin.process(item.record, context) {
                        case .pass: record = item
                        case .replace(let r): record = Item(number: item.number, record: r)
                        case .drop: record = nil
                        }
                    }
                    let emitted = context.end()
                    mark = ContinuousClock.now
                    if (mark - started).nanoseconds > timeoutNanos {
                        return .failed(PipelineError(.timeout, "timeout: process ran past \(limits.timeout.milliseconds) ms",
                                                     plugin: context.info.id, recordNumber: item.number))
                    }
                    result = .done(record: record, emitted: emitted)
                } catch {
                    _ = context.end()
                    mark = ContinuousClock.now
                    result = .failed(PipelineError.wrap(error, plugin: context.info.id, recordNumber: item.number))
                }
                return result
            }
        }
    }
}

/// Carries a freshly made, not yet shared value off the thread that made it.
struct UnsafeTransferBox<T>: @unchecked Sendable {
    // Safe because the value was made by the job that returns it and nobody else holds it.
    let value: T
    init(_ value: T) { self.value = value }
}
