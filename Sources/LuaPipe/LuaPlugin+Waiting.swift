import LuaPipeCore
import LuaRuntime

/// Records in flight for a Lua plugin that waits (docs/reference.md, "Waiting on services").
///
/// Each record's call runs as a task (a coroutine) on the instance's thread. When one waits,
/// the thread goes on with the next record, up to `concurrency` in flight (fewer while the
/// state holds more than three quarters of its `memory_mb`: records wait for admission). The
/// waits run on Swift concurrency; each answer comes back to the thread, which resumes that
/// record's call. Results keep input order. Lua never runs off the instance's thread.
extension LuaPlugin {
    /// What one hop to the thread did.
    struct Step: Sendable {
        var finished: [(slot: Int, result: ItemResult)] = []
        var waits: [(slot: Int, request: WaitRequest)] = []
        /// Slots whose calls died with an instance that broke a limit.
        var cancelled: [(slot: Int, error: PipelineError)] = []
        /// The state is near its memory limit: start no more records now.
        var full = false
        /// A reload waits for the calls in flight to end: start no more records now.
        var held = false
    }

    /// What a record in flight holds on the host beside its record (its task, its wait, the
    /// bookkeeping here, and its coroutine, which memory_mb counts too): 8 KB a record,
    /// measured with 1,000 and 30,000 waiting at once (39 and 271 MiB). Charged to the host
    /// budget while it is in flight: 65,536 records waiting at once under
    /// `--host-memory-mb 16` took 249 MiB against a bound of 160 (fifth blind round). Past three quarters of the budget (the rest is for
    /// what calls hand over), records wait for admission.
    static let hostBytesInFlight = 8192

    func processWaiting(_ items: [Item], _ context: PluginContext, _ limits: CallLimits) async -> [ItemResult] {
        let (confined, source, settings) = (self.confined, self.source, self.settings)
        let waits = settings.waits
        var results = [ItemResult?](repeating: nil, count: items.count)
        var next = 0
        var inFlight: [Int: ContinuousClock.Instant?] = [:]  // slot (item index) -> when its wait began
        var waiters: [Int: Task<Void, Never>] = [:]
        var replies: [(slot: Int, reply: WaitReply)] = []
        var full = false
        var held = false
        // Answers carry the wait's number, so a late answer of a cancelled wait is not taken
        // for the answer of that record's next wait.
        let answers = Mailbox<(slot: Int, wait: Int, reply: WaitReply, release: (@Sendable () -> Void)?)>()
        var releases: [@Sendable () -> Void] = []  // HTTP answers' budget, given back once they are in the state
        var waitNumber = 0
        var current: [Int: Int] = [:]  // slot -> the number of the wait it is in
        // Wakes the loop now and then, so a halting run is seen while every record waits.
        let alarm = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(50))
                answers.post((-1, 0, .value(nil), nil))
            }
        }
        var halted = false
        let budget = limits.ledger?.budget
        var charged = 0  // hostBytesInFlight for each record in flight
        var hostFull = false
        func release(_ n: Int) {
            guard let budget, n > 0 else { return }
            budget.adjust(-n * Self.hostBytesInFlight)
            charged -= n * Self.hostBytesInFlight
        }
        defer {
            alarm.cancel()
            for w in waiters.values { w.cancel() }
            for release in releases { release() }
            if charged > 0 { budget?.adjust(-charged) }
        }
        while true {
            var starts: [(slot: Int, item: Item)] = []
            // Near the memory limit, with the host budget full, or while a reload waits for the
            // calls in flight, a record waits for admission (but one always goes, so the batch
            // moves on).
            let room = full || held ? (inFlight.isEmpty ? 1 : 0) : limits.concurrency - inFlight.count
            hostFull = false
            while next < items.count, starts.count < room {
                if limits.stopping {  // the run is stopping: records not started never are
                    while next < items.count { results[next] = .abandoned; next += 1 }
                    break
                }
                if let budget {
                    if inFlight.isEmpty && starts.isEmpty {
                        budget.adjust(Self.hostBytesInFlight)
                    } else if !budget.tryAdmit(Self.hostBytesInFlight) {
                        hostFull = true
                        break
                    }
                    charged += Self.hostBytesInFlight
                }
                starts.append((next, items[next]))
                next += 1
            }
            if starts.isEmpty && replies.isEmpty && inFlight.isEmpty { break }
            for s in starts { inFlight[s.slot] = .some(nil) }
            let (go, back) = (starts, replies)
            replies = []
            let step = await confined.worker.run {
                confined.withValue { slot in Self.step(&slot, source, settings, go, back, context, limits) }
            }
            for release in releases { release() }
            releases = []
            full = step.full
            held = step.held
            release(step.finished.count + step.cancelled.count)
            for (slot, result) in step.finished {
                results[slot] = result
                inFlight[slot] = nil
            }
            for (slot, error) in step.cancelled {
                results[slot] = .failed(error)
                inFlight[slot] = nil
                current[slot] = nil
                waiters.removeValue(forKey: slot)?.cancel()
            }
            for (slot, request) in step.waits {
                inFlight[slot] = .some(.now)
                waitNumber += 1
                current[slot] = waitNumber
                let (call, number) = (context.forCall(recordNumber: items[slot].number), waitNumber)
                waiters[slot] = Task {
                    let (reply, release) = await waits.perform(request, call)
                    answers.post((slot, number, reply, release))
                }
            }
            limits.metrics?.inFlight(inFlight.count)
            if inFlight.isEmpty { continue }
            // Room for more records, and some left: start them before waiting for answers.
            if !full, !held, !hostFull, next < items.count, inFlight.count < limits.concurrency, !limits.stopping,
               !step.waits.isEmpty || !starts.isEmpty {
                continue
            }
            // Every answer that is in, at least one: one hop to the thread resumes them all.
            for (slot, number, reply, release) in await answers.take() {
                if let release { releases.append(release) }
                if slot < 0 {
                    // The run halts (a signal, a lost output): waits end now, as errors the
                    // plugin sees (and may handle), so its calls finish promptly.
                    if limits.stopping, !halted {
                        halted = true
                        for (s, w) in waiters {
                            w.cancel()
                            current[s] = nil
                            replies.append((s, .error("cancelled: the run is stopping")))
                        }
                        waiters = [:]
                    }
                    continue
                }
                guard current[slot] == number else { continue }  // a cancelled wait's late answer
                current[slot] = nil
                waiters[slot] = nil
                guard let began = inFlight[slot] else { continue }  // its call was cancelled meanwhile
                if let began { limits.metrics?.waited((ContinuousClock.now - began).nanoseconds) }
                replies.append((slot, reply))
            }
        }
        return results.map { $0 ?? .abandoned }
    }

    /// On the thread: answers the waits in `replies`, starts `starts`, and says what happened.
    static func step(_ slot: inout LuaInstance?, _ source: LuaPluginSource, _ settings: Settings,
                     _ starts: [(slot: Int, item: Item)], _ replies: [(slot: Int, reply: WaitReply)],
                     _ context: PluginContext, _ limits: CallLimits) -> Step {
        var step = Step()
        let handOver = limits.ledger.map { l in { (n: Int) in l.charge(n) } }
        func run(_ id: Int, _ number: Int, _ body: (LuaInstance) throws -> LuaState.TaskStep) {
            guard let instance = slot else {
                step.finished.append((id, .failed(PipelineError(.plugin, "the instance could not be rebuilt", plugin: context.info.id))))
                return
            }
            do {
                switch try body(instance) {
                case .done(let out):
                    instance.release(id)
                    step.finished.append((id, instance.result(out, number, original: starts.first { $0.slot == id }?.item)))
                case .waiting(let request):
                    step.waits.append((id, request))
                }
            } catch let e as LuaError {
                instance.release(id)
                step.finished.append((id, .failed(LuaPlugin.error(e, context, number))))
                guard e.brokeLimit else { return }
                // The state broke a limit: it is replaced, and the other calls in flight in it go.
                let why = PipelineError(.cancelled, "cancelled: record \(number) broke the instance's limit while this record was in flight",
                                        plugin: context.info.id)
                for other in instance.tasks.keys.sorted() { step.cancelled.append((other, why)) }
                instance.releaseAll()
                slot = LuaPlugin.rebuild(instance, source: source, settings: settings, context: context, timeout: settings.timeout)
            } catch {
                instance.release(id)
                step.finished.append((id, .failed(PipelineError.wrap(error, plugin: context.info.id, recordNumber: number))))
            }
        }
        for (id, reply) in replies {
            guard let instance = slot, let task = instance.tasks[id] else {
                // Its call went with its state: it fails rather than being waited for forever.
                if !step.cancelled.contains(where: { $0.slot == id }) {
                    step.cancelled.append((id, PipelineError(.cancelled, "cancelled: the instance was replaced while this record was in flight",
                                                             plugin: context.info.id)))
                }
                continue
            }
            let number = Int(task.recordNumber)
            run(id, number) { try $0.state.resume(task, with: reply, handOver: handOver) }
        }
        // A reload (--watch) goes in between records: once no call is in flight in the old state.
        func reloadIfIdle() {
            if let instance = slot, instance.reloadPending, instance.tasks.isEmpty, !limits.stopping {
                LuaPlugin.swapIn(&slot, source, settings, context, settings.timeout)
            }
        }
        reloadIfIdle()
        for (id, item) in starts {
            if step.cancelled.contains(where: { $0.slot == id }) { continue }
            run(id, item.number) { instance in
                let task = instance.task(id)
                task.recordNumber = item.number
                return try instance.state.start(task, instance.process, arg: item.tape, mode: .record, when: instance.when,
                                                allowEmit: true, recordNumber: item.number, timeout: limits.timeout,
                                                handOver: handOver)
            }
        }
        reloadIfIdle()
        if let instance = slot {
            step.held = instance.reloadPending
            let limit = instance.state.memoryLimit
            step.full = limit > 0 && instance.state.memoryUsed > limit / 4 * 3
        }
        return step
    }
}

extension LuaInstance {
    /// The task for a slot: a spare one, or a new one.
    func task(_ id: Int) -> LuaTask {
        let t = spare.popLast() ?? state.makeTask()
        tasks[id] = t
        return t
    }

    /// A slot's call ended: its task is kept for the next record (up to 64 kept).
    func release(_ id: Int) {
        guard let t = tasks.removeValue(forKey: id) else { return }
        if spare.count < 64 { spare.append(t) } else { state.free(t) }
    }

    func releaseAll() {
        for t in tasks.values { state.free(t) }
        for t in spare { state.free(t) }
        tasks = [:]
        spare = []
    }

    /// An ended call's outcome as an item result (`original`: the record when `when` said no).
    func result(_ out: LuaState.Outcome, _ number: Int, original: Item?) -> ItemResult {
        let emitted = out.emits.map { Item(number: number, tape: $0) }
        switch out.result {
        case .pass, .replace: return .done(record: Item(number: number, tape: out.output!), emitted: emitted)
        case .drop: return .done(record: nil, emitted: emitted)
        default: return .done(record: original, emitted: emitted)  // skipped by `when`
        }
    }
}

