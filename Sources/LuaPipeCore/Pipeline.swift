import Logging

/// Runs plugin instances in order over a stream of records.
///
/// `run` is the scoped lifecycle: every instance is set up (in pipeline order) before the
/// first record is read; at the end of input each stage flushes in order, so a downstream
/// flush sees what upstream flushes emitted; every instance whose setup succeeded is torn
/// down exactly once, in reverse order, also when the run fails or is stopped.
public final class Pipeline: Sendable {
    public let stages: [StageSpec]
    /// `context.shared`; `store` is the run's store (this one unless it lives elsewhere).
    public let shared: SharedStore
    public let store: any SharedStoreProtocol
    public let logger: Logger
    /// Batches in flight between two stages (bounded: memory does not grow with the input).
    public let queueDepth: Int
    /// Records every plugin call as a trace event when set (`--trace`).
    public let tracer: Tracer?
    /// What records in flight may hold on the host (`--host-memory-mb`).
    public let budget: HostBudget
    /// Threads of the run's own I/O (reading input, writing output): one stuck in a write
    /// that never returns (a full pipe nobody reads) lets a halting run end anyway.
    public let ioThreads: [WorkerThread]

    /// `store`: a shared store outside the process (Redis) for `ctx.shared`; `shared` is then
    /// replaced by one that refuses its synchronous calls.
    public init(stages: [StageSpec], shared: SharedStore = SharedStore(), store: (any RemoteSharedStore)? = nil,
                logger: Logger = Logger(label: "luapipe"), queueDepth: Int = 4, tracer: Tracer? = nil,
                hostMemory: Int = 512 << 20, ioThreads: [WorkerThread] = []) {
        self.ioThreads = ioThreads
        self.stages = stages
        self.shared = store.map { SharedStore(elsewhere: "\($0)") } ?? shared
        self.store = store ?? self.shared
        self.logger = logger
        self.queueDepth = queueDepth
        self.tracer = tracer
        budget = HostBudget(limit: hostMemory)
        store?.budget = budget  // values read from it count while they are in flight
    }

    /// Sets up every instance, runs the records from `source` to `sink`, tears everything
    /// down. Throws only when setup fails (after tearing down what was set up); failures
    /// while records flow are in the outcome. `monitor`, when given, can read the run's
    /// figures from the moment the instances are set up.
    public func run(source: any RecordSource, sink: any RecordSink, deadLetter: (any DeadLetterSink)? = nil,
                    onInputError: ErrorPolicy = .fail, stop: StopFlag = StopFlag(),
                    monitor: RunMonitor? = nil) async throws(PipelineError) -> Outcome {
        let started = ContinuousClock.now
        var setUp: [[Instance]] = []
        var filters: [(any RecordFilter)?] = []
        do {
            for spec in stages {
                var group: [Instance] = []
                defer { setUp.append(group) }
                for k in 0..<spec.instances {
                    let context = PluginContext(info: spec.info, config: spec.config, shared: shared, store: store,
                                                logger: logger, budget: budget, tracer: tracer)
                    let plugin = try await spec.makeInstance(k, context)
                    let instance = Instance(plugin: plugin, context: context)
                    let timeout = spec.limits.timeout
                    // A synchronous setup that checks `pastDeadline` ends by its timeout, and at
                    // once when the run stops.
                    context.callDeadline = ContinuousClock.now + timeout
                    defer { context.callDeadline = nil }
                    let tracer = self.tracer
                    try await RunState.abandonable(stop, after: .milliseconds(1500)) {
                        try await RunState.interruptible(stop, instance, cutting: true) {
                            try await tracer.span("setup", plugin: spec.info.id, track: instance.track) {
                                try await withTimeout(timeout, "setup") { try await instance.plugin.setup(instance.context) }
                            }
                        }
                    }
                    group.append(instance)
                }
                filters.append(try await spec.makeFilter?())
            }
        } catch {
            // An abandoned setup's thread is still inside it: what shares that thread cannot
            // be torn down.
            await teardown(error is AbandonedCall ? setUp.map { $0.filter { !($0.worker?.isBusy ?? false) } } : setUp, filters)
            var e = PipelineError.wrap(error, plugin: nil, recordNumber: nil)
            if e.code != .manifest { e.code = .setup }
            if e.plugin == nil, let failing = stages[safe: setUp.count - 1] { e.plugin = failing.info.id }
            e.message = "setup failed: " + e.message
            throw e
        }

        let run = RunState(stop: stop, budget: budget, stages: stages)
        monitor?.attach(run)
        // Cancelling the task that runs the pipeline stops it like a signal: reading ends,
        // records in flight finish, every instance is torn down.
        let flow = UnsafeTransfer((setUp, filters))
        let task = Task { await self.flow(flow.value.0, flow.value.1, run, source, sink, deadLetter, onInputError, started) }
        return await withTaskCancellationHandler {
            await self.outcome(of: task, run: run, setUp: setUp, sink: sink, started: started)
        } onCancel: {
            stop.set()
        }
    }

    /// The run's outcome: the flow's own, or, when the run halts (a signal, a closed output)
    /// and a worker thread is still inside a call after the longest `timeout_ms` plus most of
    /// the shutdown budget (a call stuck in C: granted io/os, a synchronous Swift plugin), one
    /// made from the figures as they stand, after tearing down the instances that can still be
    /// called, in what is left of the budget. The stuck calls' records count as failed, the
    /// rest in flight as abandoned; the stuck instances are left to the process's exit. With
    /// no thread stuck the flow is only slow (an async plugin that ignores cancellation, a
    /// starved machine): it gets `forcedGrace` more before the same happens.
    private func outcome(of task: Task<Outcome, Never>, run: RunState, setUp: [[Instance]], sink: any RecordSink,
                         started: ContinuousClock.Instant) async -> Outcome {
        let once = Locked(false)
        return await withCheckedContinuation { (c: CheckedContinuation<Outcome, Never>) in
            func finish(_ o: Outcome) {
                if once.withLock({ done in defer { done = true }; return !done }) { c.resume(returning: o) }
            }
            Task { finish(await task.value) }
            Task {
                while !run.stop.halts, !once.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(50)) }
                let limit = ContinuousClock.now + self.callsInFlightTimeout(setUp) + RunState.shutdownBudget - Self.forcedTeardownBudget
                while !once.withLock({ $0 }) {
                    let now = ContinuousClock.now
                    if now >= limit + Self.forcedGrace
                        || (now >= limit && (self.stuckWorkers(setUp) > 0 || self.ioThreads.contains(where: \.isBusy))) { break }
                    try? await Task.sleep(for: .milliseconds(50))
                }
                if once.withLock({ $0 }) { return }
                finish(await self.forcedOutcome(run, setUp, sink, started))
            }
        }
    }

    /// The longest `timeout_ms` among the entries that may have a call running: those with an
    /// instance on a busy worker thread, and async ones (which have no thread to look at).
    private func callsInFlightTimeout(_ setUp: [[Instance]]) -> Duration {
        var longest = Duration.zero
        for (i, group) in setUp.enumerated() where group.contains(where: { $0.worker?.isBusy ?? true }) {
            longest = max(longest, stages[i].limits.timeout)
        }
        return longest
    }

    /// What a forced shutdown leaves for the teardown of the instances that are not stuck.
    static let forcedTeardownBudget = Duration.milliseconds(500)
    /// How much longer a halting run whose threads are all free may take before it is forced.
    static let forcedGrace = Duration.seconds(30)

    private func stuckWorkers(_ setUp: [[Instance]]) -> Int {
        var workers: [ObjectIdentifier: WorkerThread] = [:]
        for group in setUp { for i in group { if let w = i.worker { workers[ObjectIdentifier(w)] = w } } }
        return workers.values.filter(\.isBusy).count
    }

    private func forcedOutcome(_ run: RunState, _ setUp: [[Instance]], _ sink: any RecordSink,
                               _ started: ContinuousClock.Instant) async -> Outcome {
        var workers: [ObjectIdentifier: WorkerThread] = [:]
        for group in setUp { for i in group { if let w = i.worker { workers[ObjectIdentifier(w)] = w } } }
        let busy = workers.values.filter(\.isBusy)
        let stuck = busy.count
        let stuckIDs = Set(busy.map { ObjectIdentifier($0) })
        if stuck > 0 {
            logger.error("shutdown: \(stuck) worker thread(s) still inside a call after the shutdown budget; their instances are abandoned without teardown")
        } else {
            logger.error("shutdown: the run's input or output is stuck (a write nobody reads); the run ends without it")
        }
        let end = ContinuousClock.now + Self.forcedTeardownBudget
        for (i, group) in setUp.enumerated().reversed() {
            for instance in group.reversed() {
                if let w = instance.worker, stuckIDs.contains(ObjectIdentifier(w)) { continue }
                let left = end - .now
                guard left > .zero, instance.claimTeardown() else { continue }
                instance.context.callDeadline = end
                do {
                    try await withTimeout(min(left, stages[i].limits.timeout), "teardown") { await instance.plugin.teardown(instance.context) }
                } catch {
                    instance.context.logger.error("teardown: \(error)")
                }
            }
        }
        var stats = RunState.snapshot(run)
        stats.recordsOut += sink.wholeInProgress  // lines a stuck write got out whole
        let unaccounted = stats.recordsIn + stats.emitted - (stats.recordsOut + stats.dropped + stats.deadLettered + stats.failed + stats.abandoned)
        let failed = min(stuck, max(0, unaccounted))
        stats.failed += failed
        stats.abandoned += max(0, unaccounted - failed)
        let published = run.published.withLock { $0 }
        stats.plugins = stages.map { published[$0.info.id] ?? PluginStats(id: $0.info.id, kind: $0.kind) }
        stats.elapsedSeconds = Double((ContinuousClock.now - started).nanoseconds) / 1e9
        let c = run.counters.withLock { $0 }
        return Outcome(stats: stats, error: c.failure, outputClosed: c.outputClosed, signal: run.stop.signal,
                       abandonedInstances: max(1, stuck))
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
                let members = indices.map { Member(spec: stages[$0], instances: setUp[$0], stats: PluginStats(id: stages[$0].info.id, kind: stages[$0].kind),
                                                   inFlight: run.inFlight[$0]) }
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
            group.addTask { await Self.write(from: last, to: sink, run: run, acknowledging: source as? any AcknowledgingSource); return .writer }
            for await result in group {
                switch result {
                case .stage(let first, let s): for (j, st) in s.enumerated() { pluginStats[first + j] = st }
                case .writer: group.cancelAll()  // everything is written: stop the tickers' sleep
                case .reader, .ticker: break
                }
            }
        }

        await teardown(setUp, filters, run)
        do { try await deadLetter?.close() } catch {
            run.fail(PipelineError.wrap(error, plugin: nil, recordNumber: nil))
        }
        var stats = RunState.snapshot(run)
        stats.plugins = pluginStats
        stats.elapsedSeconds = Double((ContinuousClock.now - started).nanoseconds) / 1e9
        let c = run.counters.withLock { $0 }
        return Outcome(stats: stats, error: c.failure, outputClosed: c.outputClosed, signal: run.stop.signal)
    }

    /// Which stages run together: consecutive worker plugins (Lua, sync Swift) whose
    /// instances are on the same threads, with no tick, no separate `when` filter, no
    /// `max_errors` (which needs the batch's results in input order before the next entry),
    /// and no calls that wait (those run with many records in flight).
    static func fuse(_ stages: [StageSpec], _ setUp: [[Instance]], _ filters: [(any RecordFilter)?]) -> [[Int]] {
        func workers(_ i: Int) -> [ObjectIdentifier]? {
            guard stages[i].tick == nil, filters[i] == nil, stages[i].maxErrors == nil else { return nil }
            let w = setUp[i].compactMap { ($0.plugin as? any WorkerPlugin).flatMap { $0.fusable ? ObjectIdentifier($0.worker) : nil } }
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

    /// Tears down every set-up instance exactly once, in reverse pipeline order; once the run
    /// is stopping, within what is left of the shutdown budget (at least 100 ms each).
    private func teardown(_ setUp: [[Instance]], _ filters: [(any RecordFilter)?], _ run: RunState? = nil) async {
        for (i, group) in setUp.enumerated().reversed() {
            for instance in group.reversed() {
                guard instance.claimTeardown() else { continue }
                instance.context.begin(recordNumber: 0)
                let timeout = run?.lifecycleTimeout(stages[i].limits.timeout, floor: .milliseconds(100)) ?? stages[i].limits.timeout
                instance.context.callDeadline = ContinuousClock.now + timeout
                defer { instance.context.callDeadline = nil }
                do {
                    try await RunState.interruptible(run?.stop ?? StopFlag(), instance) {
                        try await tracer.span("teardown", plugin: stages[i].info.id, track: instance.track) {
                            try await withTimeout(timeout, "teardown") { await instance.plugin.teardown(instance.context) }
                        }
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
                run.fail(PipelineError.wrap(error, plugin: nil, recordNumber: nil))
                return
            }
            var items: [Item] = []
            items.reserveCapacity(events.count)
            for (index, event) in events.enumerated() {
                switch event {
                case .record(let item):
                    items.append(item)
                case .invalid(let line, let number, let text, let error):
                    let message = line > 0 ? "input line \(line): \(error)" : error
                    switch policy {
                    case .drop:
                        run.update { $0.dropped += 1; $0.inputErrors += 1 }
                    case .deadLetter:
                        run.update { $0.inputErrors += 1 }
                        do {
                            try await deadLetter?.write(Self.inputEnvelope(text, message, number))
                            run.update { $0.deadLettered += 1 }
                        } catch {
                            run.fail(PipelineError.wrap(error, plugin: nil, recordNumber: number), abandoned: 1)
                        }
                    case .fail, .skip:
                        // The lines before it go on; it fails; the lines read after it are abandoned.
                        run.update { $0.recordsIn += events.count; $0.inputErrors += 1 }
                        if !items.isEmpty {
                            await run.budget.admit(HostBudget.bytes(items))
                            await channel.send(.batch(items))
                        }
                        let later = events.count - index - 1
                        run.fail(PipelineError(.input, message + " (on_input_error: fail; use drop or dead-letter to go on past such lines)",
                                               recordNumber: number), failed: 1, abandoned: later)
                        return
                    }
                }
            }
            run.update { $0.recordsIn += events.count }
            if !items.isEmpty {
                await run.budget.admit(HostBudget.bytes(items))  // waits while the records in flight hold too much
                await channel.send(.batch(items))
            }
            // Not after a failure here (a dead letter not written): its record is not done.
            if source is any AcknowledgingSource, !run.failed, let last = events.last?.number { await channel.send(.mark(last)) }
        }
    }

    /// The dead letter of a line that is not a record: its text, and when the line is not
    /// valid UTF-8 (so `input` had to replace bytes), its exact bytes in `input_base64`.
    static func inputEnvelope(_ text: [UInt8], _ message: String, _ number: Int) -> Record {
        var envelope: Record = [
            "input": .string(String(decoding: text, as: UTF8.self)), "error": .string(message),
            "record_number": .int(Int64(number)),
        ]
        if String(validating: text, as: UTF8.self) == nil { envelope["input_base64"] = .string(Base64.encode(text)) }
        return envelope
    }

    /// Writes what reaches the end. Once the output fails or closes, what is still on its way
    /// is abandoned (and counted so), and the run stops.
    /// A mark acknowledges the input records it covers once everything before it is written.
    private static func write(from channel: Channel<StageMessage>, to sink: any RecordSink, run: RunState,
                              acknowledging source: (any AcknowledgingSource)?) async {
        var closed = false
        while let message = await channel.receive() {
            if case .mark(let number) = message {
                if !closed, !run.stop.halts { await source?.acknowledge(through: number) }
                continue
            }
            guard case .batch(let items) = message, !items.isEmpty else { continue }
            if closed {
                run.abandon(items)
                continue
            }
            defer { run.budget.adjust(-HostBudget.bytes(items)) }
            // Records a failed write got out whole still count as written.
            var written = 0
            let failure: PipelineError?
            do {
                try await sink.write(items)
                written = items.count
                failure = nil
            } catch let p as PartialWrite {
                written = p.written
                failure = p.error
            } catch {
                failure = PipelineError.wrap(error, plugin: nil, recordNumber: nil)
            }
            let unwritten = items.count - written
            run.update { $0.recordsOut += written }
            if let failure {
                closed = true
                if failure.code == .io && failure.message == PipelineError.outputClosedMessage {
                    run.update { $0.outputClosed = true; $0.abandoned += unwritten }
                    run.stop.set()
                } else {
                    run.fail(failure, abandoned: unwritten)
                }
            }
        }
        do { if !closed { try await sink.close() } } catch {
            run.fail(PipelineError.wrap(error, plugin: nil, recordNumber: nil))
        }
    }
}

extension PipelineError {
    public static let outputClosedMessage = "output closed"
}

extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}
