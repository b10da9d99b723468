import Logging

/// Runs plugin instances in order over a stream of records.
///
/// `run` is the scoped lifecycle: every instance is set up (in pipeline order) before the
/// first record is read; at the end of input each stage flushes in order, so a downstream
/// flush sees what upstream flushes emitted; every instance whose setup succeeded is torn
/// down exactly once, in reverse order, also when the run fails or is stopped.
public final class Pipeline: Sendable {
    public let stages: [StageSpec]
    public let shared: SharedStore
    public let logger: Logger
    /// Batches in flight between two stages (bounded: memory does not grow with the input).
    public let queueDepth: Int
    /// Records every plugin call as a trace event when set (`--trace`).
    public let tracer: Tracer?

    public init(stages: [StageSpec], shared: SharedStore = SharedStore(),
                logger: Logger = Logger(label: "luapipe"), queueDepth: Int = 4, tracer: Tracer? = nil) {
        self.stages = stages
        self.shared = shared
        self.logger = logger
        self.queueDepth = queueDepth
        self.tracer = tracer
    }

    /// The outcome of a run: its figures, and the error that stopped it, if one did.
    public struct Outcome: Sendable {
        public var stats: RunStats
        public var error: PipelineError?
        /// The reader of the output went away (e.g. `| head`): the run ended quietly.
        public var outputClosed: Bool
        /// Set when a signal stopped the run.
        public var signal: Int32?
    }

    /// Sets up every instance, runs the records from `source` to `sink`, tears everything
    /// down. Throws only when setup fails (after tearing down what was set up); failures
    /// while records flow are in the outcome.
    public func run(source: any RecordSource, sink: any RecordSink, deadLetter: (any DeadLetterSink)? = nil,
                    onInputError: ErrorPolicy = .fail, stop: StopFlag = StopFlag()) async throws(PipelineError) -> Outcome {
        let started = ContinuousClock.now
        var setUp: [[Instance]] = []
        var filters: [(any RecordFilter)?] = []
        do {
            for spec in stages {
                var group: [Instance] = []
                defer { setUp.append(group) }
                for k in 0..<spec.instances {
                    let context = PluginContext(info: spec.info, config: spec.config, shared: shared, logger: logger)
                    let plugin = try await spec.makeInstance(k, context)
                    let instance = Instance(plugin: plugin, context: context)
                    let timeout = spec.limits.timeout
                    try await tracer.span("setup", plugin: spec.info.id, track: instance.track) {
                        try await withTimeout(timeout, "setup") { try await instance.plugin.setup(instance.context) }
                    }
                    group.append(instance)
                }
                filters.append(try await spec.makeFilter?())
            }
        } catch {
            await teardown(setUp, filters)
            var e = PipelineError.wrap(error, plugin: nil, recordNumber: nil)
            if e.code != .manifest { e.code = .setup }
            if e.plugin == nil, let failing = stages[safe: setUp.count - 1] { e.plugin = failing.info.id }
            e.message = "setup failed: " + e.message
            throw e
        }

        let run = RunState(stop: stop)
        // Cancelling the task that runs the pipeline stops it like a signal: reading ends,
        // records in flight finish, every instance is torn down.
        return await withTaskCancellationHandler {
            await self.flow(setUp, filters, run, source, sink, deadLetter, onInputError, started)
        } onCancel: {
            stop.set()
        }
    }

    private func flow(_ setUp: [[Instance]], _ filters: [(any RecordFilter)?], _ run: RunState,
                      _ source: any RecordSource, _ sink: any RecordSink, _ deadLetter: (any DeadLetterSink)?,
                      _ onInputError: ErrorPolicy, _ started: ContinuousClock.Instant) async -> Outcome {
        let stages = self.stages
        let groups = Self.fuse(stages, setUp, filters)
        let channels = (0...groups.count).map { _ in Channel<StageMessage>(capacity: queueDepth) }
        var pluginStats: [PluginStats] = stages.map { PluginStats(id: $0.info.id, kind: $0.kind) }

        enum Finished: Sendable { case reader, stage(Int, [PluginStats]), ticker, writer }
        await withTaskGroup(of: Finished.self) { group in
            group.addTask { await Self.read(source, into: channels[0], run: run, deadLetter: deadLetter, policy: onInputError); return .reader }
            for (g, indices) in groups.enumerated() {
                let members = indices.map { Member(spec: stages[$0], instances: setUp[$0], stats: PluginStats(id: stages[$0].info.id, kind: stages[$0].kind)) }
                let runner = StageRunner(members: members, filter: filters[indices[0]], input: channels[g],
                                         output: channels[g + 1], run: run, deadLetter: deadLetter, tracer: tracer)
                let box = UnsafeTransfer(runner)
                group.addTask {
                    var r = box.value
                    return .stage(indices[0], await r.run())
                }
                if let tick = stages[indices[0]].tick {
                    let input = channels[g]
                    group.addTask {
                        while !input.isFinished {
                            try? await Task.sleep(for: tick)
                            if input.isFinished { break }
                            await input.send(.tick)
                        }
                        return .ticker
                    }
                }
            }
            let last = channels[channels.count - 1]
            group.addTask { await Self.write(from: last, to: sink, run: run); return .writer }
            for await result in group {
                switch result {
                case .stage(let first, let s): for (j, st) in s.enumerated() { pluginStats[first + j] = st }
                case .writer: group.cancelAll()  // everything is written: stop the tickers' sleep
                case .reader, .ticker: break
                }
            }
        }

        await teardown(setUp, filters)
        do { try await deadLetter?.close() } catch {
            run.fail(PipelineError.wrap(error, plugin: nil, recordNumber: nil), records: 0)
        }
        var stats = RunStats()
        run.update { c in
            stats.recordsIn = c.recordsIn
            stats.recordsOut = c.recordsOut
            stats.dropped = c.dropped
            stats.deadLettered = c.deadLettered
            stats.failed = c.failed
            stats.emitted = c.emitted
        }
        stats.plugins = pluginStats
        stats.elapsedSeconds = Double((ContinuousClock.now - started).nanoseconds) / 1e9
        let c = run.counters.withLock { $0 }
        return Outcome(stats: stats, error: c.failure, outputClosed: c.outputClosed, signal: run.stop.signal)
    }

    /// Which stages run together: consecutive worker plugins (Lua, sync Swift) whose
    /// instances are on the same threads, with no tick and no separate `when` filter.
    static func fuse(_ stages: [StageSpec], _ setUp: [[Instance]], _ filters: [(any RecordFilter)?]) -> [[Int]] {
        func workers(_ i: Int) -> [ObjectIdentifier]? {
            guard stages[i].tick == nil, filters[i] == nil else { return nil }
            let w = setUp[i].compactMap { ($0.plugin as? any WorkerPlugin).map { ObjectIdentifier($0.worker) } }
            return w.count == setUp[i].count && !w.isEmpty ? w : nil
        }
        var groups: [[Int]] = []
        for i in stages.indices {
            if let last = groups.last?.last, let a = workers(last), let b = workers(i), a == b {
                groups[groups.count - 1].append(i)
            } else {
                groups.append([i])
            }
        }
        return groups
    }

    /// Tears down every set-up instance exactly once, in reverse pipeline order.
    private func teardown(_ setUp: [[Instance]], _ filters: [(any RecordFilter)?]) async {
        for (i, group) in setUp.enumerated().reversed() {
            for instance in group.reversed() {
                instance.context.begin(recordNumber: 0)
                let timeout = stages[i].limits.timeout
                do {
                    try await tracer.span("teardown", plugin: stages[i].info.id, track: instance.track) {
                        try await withTimeout(timeout, "teardown") { await instance.plugin.teardown(instance.context) }
                    }
                } catch {
                    instance.context.logger.error("teardown: \(error)")
                }
                _ = instance.context.end()  // records emitted in teardown have nowhere to go
            }
            if i < filters.count, let f = filters[i] { await f.close() }
        }
    }

    private static func read(_ source: any RecordSource, into channel: Channel<StageMessage>, run: RunState,
                             deadLetter: (any DeadLetterSink)?, policy: ErrorPolicy) async {
        defer { channel.finish() }
        while !run.stop.isSet {
            let events: [InputEvent]
            do {
                guard let e = try await source.nextBatch(stop: run.stop) else { return }
                events = e
            } catch {
                run.fail(PipelineError.wrap(error, plugin: nil, recordNumber: nil), records: 0)
                return
            }
            var items: [Item] = []
            items.reserveCapacity(events.count)
            for (index, event) in events.enumerated() {
                switch event {
                case .record(let item):
                    items.append(item)
                case .invalid(let line, let number, let text, let error):
                    let message = "input line \(line): \(error)"
                    switch policy {
                    case .drop:
                        run.update { $0.dropped += 1 }
                    case .deadLetter:
                        let envelope: Record = [
                            "input": .string(String(decoding: text, as: UTF8.self)), "error": .string(message),
                            "record_number": .int(Int64(number)),
                        ]
                        do {
                            try await deadLetter?.write(envelope)
                            run.update { $0.deadLettered += 1 }
                        } catch {
                            run.fail(PipelineError.wrap(error, plugin: nil, recordNumber: number), records: 1)
                        }
                    case .fail, .skip:
                        // The lines before it go on; it and the lines read after it fail.
                        run.update { $0.recordsIn += events.count }
                        if !items.isEmpty { await channel.send(.batch(items)) }
                        let later = events.count - index - 1
                        run.fail(PipelineError(.input, message + " (on_input_error: fail; use drop or dead-letter to go on past such lines)",
                                               recordNumber: number), records: 1 + later)
                        return
                    }
                }
            }
            run.update { $0.recordsIn += events.count }
            if !items.isEmpty { await channel.send(.batch(items)) }
        }
    }

    private static func write(from channel: Channel<StageMessage>, to sink: any RecordSink, run: RunState) async {
        var closed = false
        while let message = await channel.receive() {
            guard case .batch(let items) = message, !items.isEmpty else { continue }
            if closed { continue }
            do {
                try await sink.write(items)
                run.update { $0.recordsOut += items.count }
            } catch let e as PipelineError where e.code == .io && e.message == PipelineError.outputClosedMessage {
                closed = true
                run.update { $0.outputClosed = true }
                run.stop.set()
            } catch {
                closed = true
                run.fail(PipelineError.wrap(error, plugin: nil, recordNumber: nil), records: items.count)
            }
        }
        do { if !closed { try await sink.close() } } catch {
            run.fail(PipelineError.wrap(error, plugin: nil, recordNumber: nil), records: 0)
        }
    }
}

extension PipelineError {
    public static let outputClosedMessage = "output closed"
}

extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}
