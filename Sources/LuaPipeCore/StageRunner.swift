/// Messages between stages.
enum StageMessage: Sendable {
    case batch([Item])
    case tick
    /// Every input record numbered up to this one is done upstream (acknowledging sources
    /// only): the writer acknowledges them once what came before the mark is written.
    case mark(Int)
}

/// A set-up plugin instance with its context.
struct Instance: @unchecked Sendable {
    // Safe because one stage task owns its instances and calls each one at a time (parallel
    // instances are separate objects, each called by one child task).
    let plugin: any Plugin
    let context: PluginContext
    private let tornDown = Locked(false)

    init(plugin: any Plugin, context: PluginContext) {
        self.plugin = plugin
        self.context = context
    }

    /// True the first time only: whoever gets it tears the instance down (exactly once, also
    /// when a forced shutdown and the run's own end race).
    func claimTeardown() -> Bool { tornDown.withLock { done in defer { done = true }; return !done } }

    /// The worker thread the instance's calls run on, if it has one.
    var worker: WorkerThread? { (plugin as? any WorkerBound)?.worker }
}

/// Runs a stage: one manifest entry, or several consecutive entries of worker plugins whose
/// instances share threads (`Pipeline.fuse`). Takes batches from upstream, calls the
/// instances, applies each entry's `on_error`, counts, and hands the results on in order.
///
/// A fused stage crosses to each worker once per batch for all its entries; between entries
/// a record goes on without a hop, and each entry's policy, figures and limits stay its own.
struct StageRunner {
    var members: [Member]
    let filter: (any RecordFilter)?
    let input: Channel<StageMessage>
    let output: Channel<StageMessage>
    let run: RunState
    let deadLetter: (any DeadLetterSink)?
    let tracer: Tracer?
    private var draining = false
    /// The trace's name of a fused batch from entry i on ("a+b+c"): made once, so that each
    /// traced batch shares it (long ids made a copy per batch: 232 MiB for 280,000 events).
    private let fusedIDs: [String]

    init(members: [Member], filter: (any RecordFilter)?, input: Channel<StageMessage>, output: Channel<StageMessage>,
         run: RunState, deadLetter: (any DeadLetterSink)?, tracer: Tracer?) {
        self.members = members
        self.filter = filter
        self.input = input
        self.output = output
        self.run = run
        self.deadLetter = deadLetter
        self.tracer = tracer
        fusedIDs = members.indices.map { i in members[i...].map(\.spec.info.id).joined(separator: "+") }
    }

    /// Runs until upstream ends; flushes unless the run failed; returns each entry's figures.
    ///
    /// A fused stage keeps two batches in flight while input is waiting: the next one is
    /// queued on the workers before the last one's results are counted and sent, so the
    /// threads do not wait for that. When nothing is waiting, a batch goes on at once (a
    /// record from a slow source is not held back for the next one).
    mutating func run() async -> [PluginStats] {
        var inflight: Task<FusedBatch, Never>?
        while true {
            if let previous = inflight, !input.hasPending {
                await complete(await previous.value)
                inflight = nil
            }
            guard let message = await input.receive() else { break }
            switch message {
            case .batch(let batch):
                if draining || run.stop.halts {
                    run.abandon(batch)  // after this stage failed, or the run halts: never called
                    continue
                }
                let items = run.stop.isSet ? run.needed(batch) : batch
                if items.isEmpty { continue }
                guard members.count > 1 else {
                    await processOne(items)
                    continue
                }
                let next = launch(items, from: 0)
                if let previous = inflight { await complete(await previous.value) }
                inflight = next
            case .tick:
                if !draining, !run.stop.isSet {
                    await lifecycle(0, "tick") { try await $0.plugin.tick($0.context) }
                    run.publish(members)  // a tick's errors and emits, for a monitor
                }
            case .mark(let number):
                // Passed on after everything before it, and only while no record can have
                // been left undone: not after a failure here, nor once the run halts.
                if let previous = inflight {
                    await complete(await previous.value)
                    inflight = nil
                }
                if !draining && !run.stop.halts { await output.send(.mark(number)) }
            }
        }
        if let last = inflight { await complete(await last.value) }
        // A run stopped by a signal still flushes, within the shutdown budget; one that failed
        // or lost its output does not (nothing could be written).
        for m in members.indices where !draining && !run.failed && !run.outputClosed {
            await lifecycle(m, "flush") { try await $0.plugin.flush($0.context) }
        }
        output.finish()
        return members.map(\.stats)
    }

    /// tick or flush on every instance of entry `m`; what they emit goes through the entries
    /// after it.
    private mutating func lifecycle(_ m: Int, _ what: String, _ call: @escaping @Sendable (Instance) async throws -> Void) async {
        let spec = members[m].spec
        for instance in members[m].instances {
            guard let timeout = run.lifecycleTimeout(spec.limits.timeout) else {
                instance.context.logger.warning("\(what) skipped: the shutdown budget is spent")
                continue
            }
            instance.context.begin(recordNumber: 0)
            instance.context.callDeadline = ContinuousClock.now + timeout
            let ledger = Ledger(run.budget)
            instance.context.ledger = ledger
            defer { instance.context.callDeadline = nil; instance.context.ledger = nil }
            let started = ContinuousClock.now
            do {
                try await RunState.interruptible(run.stop, instance) {
                    try await tracer.span(what, plugin: spec.info.id, track: instance.track) {
                        try await withTimeout(timeout, what) { try await call(instance) }
                    }
                }
            } catch {
                _ = instance.context.end()
                run.budget.adjust(-ledger.total)  // what it emitted is discarded
                let e = PipelineError.wrap(error, plugin: spec.info.id, recordNumber: nil)
                members[m].stats.errors += 1
                if e.code == .timeout { members[m].stats.timeouts += 1 }
                instance.context.logger.error("\(what) failed: \(e.message)")
                if spec.onError == .fail {
                    run.fail(PipelineError(e.code, "\(what) failed: \(e.message)", plugin: spec.info.id,
                                           location: e.location, traceback: e.traceback))
                    draining = true
                    return
                }
                continue
            }
            members[m].stats.totalNanos += (ContinuousClock.now - started).nanoseconds
            let emitted = instance.context.end()
            run.budget.adjust(HostBudget.bytes(emitted) - ledger.total)
            if !emitted.isEmpty {
                members[m].stats.emitted += emitted.count
                run.update { $0.emitted += emitted.count }
                if m + 1 < members.count { await process(emitted, from: m + 1) } else { await output.send(.batch(emitted)) }
                if draining { return }
            }
        }
    }

    /// Runs `items` through entries `from...` and sends what comes out downstream.
    private mutating func process(_ items: [Item], from: Int) async {
        if members.count == 1 {
            await processOne(items)
        } else {
            await complete(await launch(items, from: from).value)
        }
    }

    // MARK: One entry

    /// Calls the entry's instances on `items`; each instance's share reports to a
    /// `CallMetrics` of its own, appended to `metrics`.
    private func dispatch(_ items: [Item], _ ledger: Ledger, _ metrics: inout [CallMetrics]) async -> [ItemResult] {
        let (spec, instances, entry) = (members[0].spec, members[0].instances, members[0].inFlight)
        func limits(_ m: CallMetrics) -> CallLimits {
            CallLimits(timeout: spec.limits.timeout, stop: run.stop, ledger: ledger, concurrency: spec.limits.concurrency, metrics: m)
        }
        if instances.count == 1 || items.count == 1 {
            let (i, m) = (instances[0], CallMetrics(entry: entry))
            metrics.append(m)
            m.began()
            defer { m.ended() }
            return await tracer.span("process", plugin: spec.info.id, track: i.track, records: items.count) {
                await i.plugin.processBatch(items, i.context, limits(m))
            }
        }
        // Parallel instances: contiguous slices, one per instance, merged back in order.
        let slices = Self.slices(items.count, instances.count)
        let shares = slices.map { _ in CallMetrics(entry: entry) }
        metrics += shares
        return await withTaskGroup(of: (Int, [ItemResult]).self) { group in
            for (k, range) in slices.enumerated() {
                let slice = Array(items[range])
                let instance = instances[k]
                let (tracer, id, m, limits) = (self.tracer, spec.info.id, shares[k], limits(shares[k]))
                group.addTask {
                    m.began()
                    defer { m.ended() }
                    return (k, await tracer.span("process", plugin: id, track: instance.track, records: slice.count) {
                        await instance.plugin.processBatch(slice, instance.context, limits)
                    })
                }
            }
            var parts = [[ItemResult]](repeating: [], count: slices.count)
            for await (k, r) in group { parts[k] = r }
            return parts.flatMap { $0 }
        }
    }

    /// Contiguous, non-empty ranges that cover `0..<count` in order, at most `instances` of
    /// them, as even as can be (sizes differ by at most one).
    static func slices(_ count: Int, _ instances: Int) -> [Range<Int>] {
        guard count > 0 else { return [] }
        let n = max(1, min(instances, count))
        let (per, extra) = count.quotientAndRemainder(dividingBy: n)
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(n)
        var start = 0
        for k in 0..<n {
            let end = start + per + (k < extra ? 1 : 0)
            ranges.append(start..<end)
            start = end
        }
        return ranges
    }

    private mutating func processOne(_ items: [Item]) async {
        if members[0].stats.disabled {
            await output.send(.batch(items))
            return
        }
        let ledger = Ledger(run.budget)
        let inBytes = HostBudget.bytes(items)
        var mask: [Bool]? = nil
        if let filter {
            do {
                mask = try await filter.test(items)
            } catch {
                // A `when` that fails fails every record of the batch under the policy.
                let e = PipelineError.wrap(error, plugin: members[0].spec.info.id, recordNumber: nil)
                await finish(0, Applied(members[0].spec, items, mask: nil, results: items.map { _ in .failed(e) }),
                             settling: inBytes, ledger)
                return
            }
        }
        let selected = mask.map { m in zip(items, m).filter(\.1).map(\.0) } ?? items
        let started = ContinuousClock.now
        var metrics: [CallMetrics] = []
        let results = selected.isEmpty ? [] : await dispatch(selected, ledger, &metrics)
        let calls = results.reduce(0) { n, r in if case .abandoned = r { n } else { n + 1 } }
        members[0].stats.recordCalls(calls, nanos: (ContinuousClock.now - started).nanoseconds)
        members[0].stats.inFlightMax = max(members[0].stats.inFlightMax, metrics.map(\.inFlightMax).max() ?? 0, calls > 0 ? 1 : 0)
        members[0].stats.waitNanos += metrics.reduce(0) { $0 + $1.waitNanos }
        await finish(0, Applied(members[0].spec, items, mask: mask, results: results, errorsBefore: members[0].stats.errors),
                     settling: inBytes, ledger)
    }

    /// Carries out entry `m`'s outcome for a batch and sends on what it lets through. The
    /// host budget is settled: what went in (`inBytes`) leaves, what goes on arrives, less
    /// what the calls charged already.
    private mutating func finish(_ m: Int, _ applied: Applied, settling inBytes: Int, _ ledger: Ledger) async {
        run.budget.adjust(HostBudget.bytes(applied.out) - inBytes - ledger.total)
        let ok = await commit(m, applied)
        if !applied.out.isEmpty { await output.send(.batch(applied.out)) }
        if ok, let failure = applied.failure { fail(failure, failed: 1) }
        run.publish(members)
    }

    /// Counts, and writes the dead letters. False when writing one failed (the run fails;
    /// the records whose dead letters were not written are abandoned).
    private mutating func commit(_ m: Int, _ applied: Applied) async -> Bool {
        members[m].count(applied, run: run)
        for (k, envelope) in applied.deadLetters.enumerated() {
            do {
                try await deadLetter?.write(envelope)
                run.update { $0.deadLettered += 1 }
            } catch {
                fail(PipelineError.wrap(error, plugin: members[m].spec.info.id, recordNumber: nil),
                     abandoned: applied.deadLetters.count - k)
                return false
            }
        }
        return true
    }

    private mutating func fail(_ error: PipelineError, failed: Int = 0, abandoned: Int = 0) {
        run.fail(error, failed: failed, abandoned: abandoned)
        draining = true
    }

    // MARK: Fused entries

    /// What one worker made of its slice: each entry's outcome, calls and time.
    struct SliceOutcome: Sendable {
        var applied: [Applied] = []
        var calls: [Int] = []
        var nanos: [UInt64] = []
        var out: [Item] = []
    }

    /// A batch on its way through the fused entries `from...`.
    struct FusedBatch: Sendable {
        var from: Int
        /// What the batch held when it came in, and what its calls charged since.
        var inBytes: Int
        var ledger: Ledger
        var slices: [Range<Int>]
        var outcomes: [SliceOutcome]
    }

    /// Queues the batch on the workers: each slice goes through every entry in one job.
    private func launch(_ items: [Item], from: Int) -> Task<FusedBatch, Never> {
        let entries = Array(members[from...].map { (spec: $0.spec, instances: $0.instances, disabled: $0.stats.disabled, inFlight: $0.inFlight) })
        let slices = Self.slices(items.count, entries[0].instances.count)
        let ids = fusedIDs[from]
        let tracer = self.tracer
        let jobs = slices.enumerated().map { k, range in
            (Array(items[range]), entries.map { e in UncheckedWorkerPlugin(e.instances[k].plugin as! any WorkerPlugin, e.instances[k].context) })
        }
        let ledger = Ledger(run.budget)
        let inBytes = HostBudget.bytes(items)
        let specs = entries.map { e in
            var spec = e.spec
            spec.limits.stop = run.stop
            spec.limits.ledger = ledger
            return (spec, e.disabled, e.inFlight)
        }
        return Task {
            let outcomes = await withTaskGroup(of: (Int, SliceOutcome).self) { group in
                for (k, (slice, plugins)) in jobs.enumerated() {
                    group.addTask {
                        let worker = plugins[0].plugin.worker
                        return (k, await tracer.span("process", plugin: ids, track: worker.name, records: slice.count) {
                            await worker.run { Self.runSlice(slice, specs, plugins) }
                        })
                    }
                }
                var parts = [SliceOutcome](repeating: SliceOutcome(), count: jobs.count)
                for await (k, o) in group { parts[k] = o }
                return parts
            }
            return FusedBatch(from: from, inBytes: inBytes, ledger: ledger, slices: slices, outcomes: outcomes)
        }
    }

    /// Counts each entry's outcome in input order and sends on what came through. A failure
    /// under `fail` abandons the slices after it.
    private mutating func complete(_ batch: FusedBatch) async {
        if draining {  // an earlier batch failed the run while this one was on the workers
            run.abandon(batch.slices.reduce(0) { $0 + $1.count })
            run.budget.adjust(-batch.inBytes - batch.ledger.total)
            return
        }
        var sent = 0
        defer { run.budget.adjust(sent - batch.inBytes - batch.ledger.total) }
        var out: [Item] = []
        for (k, o) in batch.outcomes.enumerated() {
            var committed = true
            for (j, applied) in o.applied.enumerated() {
                members[batch.from + j].stats.recordCalls(o.calls[j], nanos: o.nanos[j])
                if !(await commit(batch.from + j, applied)) {
                    // A dead letter could not be written: the run failed. What this entry let
                    // through goes no further, nor do the slices after this one.
                    run.abandon(applied.out.count + batch.slices[(k + 1)...].reduce(0) { $0 + $1.count })
                    committed = false
                    break
                }
            }
            if !committed { break }
            out += o.out
            if let failure = o.applied.first(where: { $0.failure != nil })?.failure {
                let later = batch.slices[(k + 1)...].reduce(0) { $0 + $1.count }
                sent = HostBudget.bytes(out)
                if !out.isEmpty { await output.send(.batch(out)) }
                fail(failure, failed: 1, abandoned: later)
                run.publish(members)
                return
            }
        }
        sent = HostBudget.bytes(out)
        if !out.isEmpty { await output.send(.batch(out)) }
        run.publish(members)
    }

    /// On the worker: the slice through each entry in turn, its policy applied in between.
    private static func runSlice(_ slice: [Item], _ entries: [(spec: StageSpec, disabled: Bool, inFlight: InFlightCount)],
                                 _ plugins: [UncheckedWorkerPlugin]) -> SliceOutcome {
        var o = SliceOutcome()
        var current = slice
        for (j, entry) in entries.enumerated() {
            if entry.disabled || current.isEmpty {
                o.applied.append(Applied(out: current))
                o.calls.append(0)
                o.nanos.append(0)
                continue
            }
            let started = ContinuousClock.now
            entry.inFlight.add(1)  // one call at a time on this thread: plugins that wait are not fused
            let results = plugins[j].plugin.processOnWorker(current, plugins[j].context, entry.spec.limits)
            entry.inFlight.add(-1)
            o.nanos.append((ContinuousClock.now - started).nanoseconds)
            o.calls.append(results.reduce(0) { n, r in if case .abandoned = r { n } else { n + 1 } })
            let applied = Applied(entry.spec, current, mask: nil, results: results)
            current = applied.out
            o.applied.append(applied)
        }
        o.out = current
        return o
    }
}

/// A worker plugin instance handed to its own worker thread for a fused batch.
struct UncheckedWorkerPlugin: @unchecked Sendable {
    // Safe because the stage calls each instance from one job at a time, on its own thread.
    let plugin: any WorkerPlugin
    let context: PluginContext
    init(_ plugin: any WorkerPlugin, _ context: PluginContext) {
        self.plugin = plugin
        self.context = context
    }
}
