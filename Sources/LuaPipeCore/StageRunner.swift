/// Messages between stages.
enum StageMessage: Sendable {
    case batch([Item])
    case tick
}

/// A set-up plugin instance with its context.
struct Instance: @unchecked Sendable {
    // Safe because one stage task owns its instances and calls each one at a time (parallel
    // instances are separate objects, each called by one child task).
    let plugin: any Plugin
    let context: PluginContext
}

/// Runs one manifest entry: takes batches from upstream, calls its instances, applies the
/// `on_error` policy, counts, and hands the results downstream in order.
struct StageRunner {
    let spec: StageSpec
    let instances: [Instance]
    let filter: (any RecordFilter)?
    let input: Channel<StageMessage>
    let output: Channel<StageMessage>
    let run: RunState
    let deadLetter: (any DeadLetterSink)?
    let tracer: Tracer?
    var stats: PluginStats
    private var draining = false

    init(spec: StageSpec, instances: [Instance], filter: (any RecordFilter)?, input: Channel<StageMessage>,
         output: Channel<StageMessage>, run: RunState, deadLetter: (any DeadLetterSink)?, tracer: Tracer?) {
        self.spec = spec
        self.instances = instances
        self.filter = filter
        self.input = input
        self.output = output
        self.run = run
        self.deadLetter = deadLetter
        self.tracer = tracer
        stats = PluginStats(id: spec.info.id, kind: spec.kind)
    }

    /// Runs until upstream ends; flushes unless the run failed; returns the stage's figures.
    mutating func run() async -> PluginStats {
        while let message = await input.receive() {
            switch message {
            case .batch(let items):
                if draining {
                    run.update { $0.failed += items.count }  // abandoned after the run failed
                    continue
                }
                await process(items)
            case .tick:
                if !draining, !run.failed { await lifecycle("tick") { try await $0.plugin.tick($0.context) } }
            }
        }
        if !draining, !run.failed, !run.outputClosed {
            await lifecycle("flush") { try await $0.plugin.flush($0.context) }
        }
        output.finish()
        return stats
    }

    /// tick or flush on every instance; what they emit goes downstream.
    private mutating func lifecycle(_ what: String, _ call: @escaping @Sendable (Instance) async throws -> Void) async {
        for instance in instances {
            instance.context.begin(recordNumber: 0)
            let started = ContinuousClock.now
            do {
                let timeout = spec.limits.timeout
                try await tracer.span(what, plugin: spec.info.id, track: instance.track) {
                    try await withTimeout(timeout, what) { try await call(instance) }
                }
            } catch {
                _ = instance.context.end()
                let e = PipelineError.wrap(error, plugin: spec.info.id, recordNumber: nil)
                stats.errors += 1
                if e.code == .timeout { stats.timeouts += 1 }
                instance.context.logger.error("\(what) failed: \(e.message)")
                if spec.onError == .fail {
                    run.fail(PipelineError(e.code, "\(what) failed: \(e.message)", plugin: spec.info.id,
                                           location: e.location, traceback: e.traceback), records: 0)
                    draining = true
                    return
                }
                continue
            }
            stats.totalNanos += (ContinuousClock.now - started).nanoseconds
            let emitted = instance.context.end()
            if !emitted.isEmpty {
                stats.emitted += emitted.count
                run.update { $0.emitted += emitted.count }
                await output.send(.batch(emitted))
            }
        }
    }

    private func dispatch(_ items: [Item]) async -> [ItemResult] {
        if instances.count == 1 || items.count == 1 {
            let i = instances[0]
            return await tracer.span("process", plugin: spec.info.id, track: i.track, records: items.count) {
                await i.plugin.processBatch(items, i.context, spec.limits)
            }
        }
        // Parallel instances: contiguous slices, one per instance, merged back in order.
        let n = min(instances.count, items.count)
        let per = (items.count + n - 1) / n
        let limits = spec.limits
        return await withTaskGroup(of: (Int, [ItemResult]).self) { group in
            for k in 0..<n {
                let slice = Array(items[(k * per)..<min(items.count, (k + 1) * per)])
                let instance = instances[k]
                let (tracer, id) = (self.tracer, spec.info.id)
                group.addTask {
                    (k, await tracer.span("process", plugin: id, track: instance.track, records: slice.count) {
                        await instance.plugin.processBatch(slice, instance.context, limits)
                    })
                }
            }
            var parts = [[ItemResult]](repeating: [], count: n)
            for await (k, r) in group { parts[k] = r }
            return parts.flatMap { $0 }
        }
    }

    private mutating func process(_ items: [Item]) async {
        if stats.disabled {
            await output.send(.batch(items))
            return
        }
        var mask: [Bool]? = nil
        if let filter {
            do {
                mask = try await filter.test(items)
            } catch {
                // A `when` that fails fails every record of the batch under the policy.
                let e = PipelineError.wrap(error, plugin: spec.info.id, recordNumber: nil)
                let results = items.map { _ in ItemResult.failed(e) }
                await merge(items, mask: nil, results: results)
                return
            }
        }
        let selected = mask.map { m in zip(items, m).filter(\.1).map(\.0) } ?? items
        let started = ContinuousClock.now
        let results = selected.isEmpty ? [] : await dispatch(selected)
        stats.recordCalls(selected.count, nanos: (ContinuousClock.now - started).nanoseconds)
        await merge(items, mask: mask, results: results)
    }

    /// Errors a policy handles are logged too, the first `loggedErrors` of each plugin.
    static let loggedErrors = 20

    private func logFailure(_ error: PipelineError) {
        guard stats.errors <= Self.loggedErrors else { return }
        let logger = instances[0].context.logger
        let at = error.recordNumber.map { "record \($0): " } ?? ""
        logger.warning("\(at)\(error.message) (on_error: \(spec.onError.rawValue))")
        if stats.errors == Self.loggedErrors {
            logger.warning("further errors of this plugin are counted in the stats, not logged")
        }
    }

    private mutating func merge(_ items: [Item], mask: [Bool]?, results: [ItemResult]) async {
        var out: [Item] = []
        out.reserveCapacity(items.count)
        var next = 0
        var emittedHere = 0, droppedHere = 0, deadHere = 0  // run-wide counts, added at the end
        for (index, item) in items.enumerated() {
            if let mask, !mask[index] {
                out.append(item)
                continue
            }
            let result = results[next]
            next += 1
            switch result {
            case .done(let record, let emitted):
                out.append(contentsOf: emitted)
                emittedHere += emitted.count
                stats.emitted += emitted.count
                if let record {
                    out.append(record)
                } else {
                    droppedHere += 1
                    stats.dropped += 1
                }
            case .failed(var error):
                if error.recordNumber == nil, item.number > 0 { error.recordNumber = item.number }
                stats.errors += 1
                if error.code == .timeout { stats.timeouts += 1 }
                if spec.onError != .fail { logFailure(error) }
                if !stats.disabled, let max = spec.maxErrors, stats.errors >= max {
                    stats.disabled = true
                    instances[0].context.logger.warning("disabled after \(stats.errors) errors (max_errors: \(max)); its records pass unchanged from now on")
                }
                switch spec.onError {
                case .fail:
                    let abandoned = items.count - index - 1
                    run.update { c in
                        c.emitted += emittedHere
                        c.dropped += droppedHere
                        c.deadLettered += deadHere
                    }
                    emittedHere = 0; droppedHere = 0; deadHere = 0
                    if !out.isEmpty { await output.send(.batch(out)) }
                    run.fail(error, records: 1 + abandoned)
                    draining = true
                    return
                case .skip:
                    out.append(item)
                case .drop:
                    droppedHere += 1
                    stats.dropped += 1
                case .deadLetter:
                    let envelope: Record = [
                        "record": .object(item.record), "plugin": .string(spec.info.id),
                        "error": .string(error.message), "record_number": .int(Int64(item.number)),
                    ]
                    do {
                        try await deadLetter?.write(envelope)
                        deadHere += 1
                    } catch {
                        run.update { c in c.emitted += emittedHere; c.dropped += droppedHere; c.deadLettered += deadHere }
                        emittedHere = 0; droppedHere = 0; deadHere = 0
                        run.fail(PipelineError.wrap(error, plugin: spec.info.id, recordNumber: item.number),
                                 records: items.count - index)
                        draining = true
                        return
                    }
                }
            }
        }
        let (e, d, dl) = (emittedHere, droppedHere, deadHere)
        run.update { c in
            c.emitted += e
            c.dropped += d
            c.deadLettered += dl
        }
        if !out.isEmpty { await output.send(.batch(out)) }
    }
}
