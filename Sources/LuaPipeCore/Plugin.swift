import Synchronization

/// What a plugin call decides about the record it was given.
public enum Disposition: Sendable, Equatable {
    /// The record goes on unchanged.
    case pass
    /// This record goes on instead.
    case replace(Record)
    /// The record is dropped on purpose (counted as dropped).
    case drop
}

/// A plugin instance as the pipeline sees it: Lua scripts, synchronous Swift plugins and async
/// Swift plugins all present this one protocol (through `LuaPlugin`, `SyncPluginAdapter` and
/// directly), and the pipeline cannot tell them apart.
///
/// Write an async Swift plugin by conforming a class to it; everything but `process` has a
/// default. The pipeline calls one instance from one task at a time, in order, so an instance
/// may keep mutable state without locks.
/// - Important: `setup` runs before the first record; `teardown` exactly once if `setup`
///   succeeded, also after failures and cancellation. Emit extra records with `context.emit`.
public protocol Plugin: AnyObject {
    func setup(_ context: PluginContext) async throws
    func process(_ record: Record, _ context: PluginContext) async throws -> Disposition
    func tick(_ context: PluginContext) async throws
    func flush(_ context: PluginContext) async throws
    func teardown(_ context: PluginContext) async

    /// False for plugins trusted to return promptly (the built-ins): their calls skip the
    /// timeout race, which costs a task group per record.
    var enforcesTimeout: Bool { get }

    /// Stops the call running now, from any thread, as soon as it can (Lua: at its next
    /// instruction). The pipeline calls it when a halting run's shutdown budget is spent and
    /// a setup, tick, flush or teardown still runs. The default does nothing.
    func interrupt()

    /// Processes a batch; the pipeline calls this. The default calls `process` for each item.
    /// Adapters that cross to a worker thread override it to cross once per batch.
    func processBatch(_ items: [Item], _ context: PluginContext, _ limits: CallLimits) async -> [ItemResult]
}

/// A plugin whose calls run synchronously on one worker thread (Lua, sync Swift). Consecutive
/// stages of such plugins whose instances share threads run as one stage: a batch crosses to
/// the thread once for all of them, and each record goes from one to the next without a hop.
public protocol WorkerPlugin: Plugin, WorkerBound {
    /// What `processBatch` does, called on `worker`.
    func processOnWorker(_ items: [Item], _ context: PluginContext, _ limits: CallLimits) -> [ItemResult]
    /// False for an instance whose calls wait (a Lua plugin that uses luapipe.sleep and the
    /// like): it runs as a stage of its own, so many of its records can wait at once.
    var fusable: Bool { get }
}

extension WorkerPlugin {
    public var fusable: Bool { true }
}

/// Per-call limits from the manifest, and the run's stop flag.
public struct CallLimits: Sendable {
    public var timeout: Duration
    /// Set when the run halts (a signal, a closed output, a cancelled task): a batch stops
    /// between records, and the records not yet called come back `.abandoned`. A failure
    /// under `fail` does not halt: the records before it still go through.
    public var stop: StopFlag?
    /// Where calls charge what they hand over to the host budget, for the stage to settle.
    public var ledger: Ledger?
    /// The most records one instance may have in flight at once (the manifest's
    /// `concurrency`): calls that wait (Lua waits, a `ConcurrentPlugin`) overlap up to it.
    public var concurrency: Int
    /// Where an instance reports how many records it had in flight and how long they waited.
    public var metrics: CallMetrics?
    public init(timeout: Duration = .seconds(10), stop: StopFlag? = nil, ledger: Ledger? = nil,
                concurrency: Int = 64, metrics: CallMetrics? = nil) {
        self.timeout = timeout
        self.stop = stop
        self.ledger = ledger
        self.concurrency = max(1, concurrency)
        self.metrics = metrics
    }

    /// True once the run is halting (a signal, a closed output): calls not yet made are not.
    @inline(__always) public var stopping: Bool { stop?.halts ?? false }
}

/// What the calls of one batch charged to the host budget (`HostBudget`): the stage adds what
/// its output holds and takes away what its input held, less what is already charged here.
///
/// Calls charge a reserve taken from the budget a MiB at a time, with an atomic, so the
/// budget's lock is taken once per MiB of hand-overs, not once per call.
public final class Ledger: Sendable {
    public let budget: HostBudget
    /// Bytes taken from the budget so far, and the part of them no call has used yet.
    private let taken = Atomic<Int>(0)
    private let spare = Atomic<Int>(0)
    static let chunk = 1 << 20
    public init(_ budget: HostBudget) { self.budget = budget }

    /// Charges a call's hand-over when it fits the budget; false when it does not.
    public func charge(_ bytes: Int) -> Bool {
        while true {
            let left = spare.load(ordering: .relaxed)
            if left >= bytes {
                if spare.compareExchange(expected: left, desired: left - bytes, ordering: .relaxed).exchanged { return true }
                continue
            }
            // Take more from the budget: a chunk, or at least what this call needs.
            let want = max(bytes - left, Self.chunk)
            if budget.tryCharge(want) {
                taken.add(want, ordering: .relaxed)
                spare.add(want, ordering: .relaxed)
            } else if budget.tryCharge(bytes - left) {
                taken.add(bytes - left, ordering: .relaxed)
                spare.add(bytes - left, ordering: .relaxed)
            } else {
                return false
            }
        }
    }

    /// Everything this ledger took from the budget (used or not): the stage gives it back
    /// when it settles the batch.
    public var total: Int { taken.load(ordering: .relaxed) }
}

/// Records in flight and time spent waiting, reported by an instance while a batch runs.
/// The stage gives each instance's share of a batch a `CallMetrics` of its own: `inFlight`
/// reports that instance's count, which also moves the entry's count of records in flight.
public final class CallMetrics: Sendable {
    private let state = Locked<(inFlightMax: Int, waitNanos: UInt64, current: Int)>((0, 0, 0))
    private let entry: InFlightCount?
    public init() { entry = nil }
    init(entry: InFlightCount) { self.entry = entry }
    /// The instance has `n` records in flight now.
    public func inFlight(_ n: Int) {
        state.withLock { s in
            s.inFlightMax = max(s.inFlightMax, n)
            moveCurrent(&s, to: n)
        }
    }
    public func waited(_ nanos: UInt64) { state.withLock { $0.waitNanos += nanos } }
    public var inFlightMax: Int { state.withLock { $0.inFlightMax } }
    public var waitNanos: UInt64 { state.withLock { $0.waitNanos } }

    /// The stage, around the instance's share of a batch: in flight counts one record from
    /// the start (a plugin that waits reports its own count then), none at the end. Neither
    /// touches `inFlightMax`.
    func began() { state.withLock { moveCurrent(&$0, to: 1) } }
    func ended() { state.withLock { moveCurrent(&$0, to: 0) } }

    private func moveCurrent(_ s: inout (inFlightMax: Int, waitNanos: UInt64, current: Int), to n: Int) {
        entry?.add(n - s.current)
        s.current = n
    }
}

/// An async plugin whose `process` may run for several records at once: up to the manifest's
/// `concurrency` (default 64) per instance, each call with a context of its own
/// (`context.recordNumber` and `context.emit` are the call's). Use it for plugins that wait
/// on services. A plain `Plugin` keeps one call at a time, so its state needs no locks.
/// - Important: the type must be safe to call from several tasks at once.
public protocol ConcurrentPlugin: Plugin, Sendable {}

extension ConcurrentPlugin {
    /// Runs the batch's calls with at most `limits.concurrency` in flight; results come back
    /// in input order, whatever finishes first. A call past its timeout is cancelled and its
    /// record fails at once (one timer for the batch, not one per call); what it does after
    /// that is ignored.
    public func processBatch(_ items: [Item], _ context: PluginContext, _ limits: CallLimits) async -> [ItemResult] {
        let done = Mailbox<(index: Int, result: ItemResult)>()
        var results = [ItemResult?](repeating: nil, count: items.count)
        var running: [Int: (task: Task<Void, Never>, deadline: ContinuousClock.Instant)] = [:]
        var next = 0
        let sweeper = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(10))
                done.post((-1, .abandoned))
            }
        }
        defer { sweeper.cancel() }
        while true {
            while next < items.count, running.count < limits.concurrency {
                let (i, item) = (next, items[next])
                next += 1
                if limits.stopping {
                    results[i] = .abandoned
                    continue
                }
                let call = context.forCall(recordNumber: item.number)
                let started = ContinuousClock.now
                let task = Task {
                    let r = await self.callOnce(item, call, limits.ledger)
                    limits.metrics?.waited((ContinuousClock.now - started).nanoseconds)
                    call.tracer?.wait("process", plugin: call.info.id, record: item.number, since: started)
                    done.post((i, r))
                }
                running[i] = (task, started + limits.timeout)
            }
            limits.metrics?.inFlight(running.count)
            if running.isEmpty { break }
            for (i, r) in await done.take() {
                if i >= 0 {
                    if running.removeValue(forKey: i) != nil { results[i] = r }
                    continue
                }
                let now = ContinuousClock.now
                if limits.stopping {
                    // The run halts (a signal, a lost output): calls that wait end now.
                    for (k, entry) in running {
                        entry.task.cancel()
                        results[k] = .failed(PipelineError(.cancelled, "cancelled: the run is stopping",
                                                           plugin: context.info.id, recordNumber: items[k].number))
                    }
                    running = [:]
                    continue
                }
                for (k, entry) in running where entry.deadline <= now {
                    entry.task.cancel()
                    running[k] = nil
                    results[k] = .failed(PipelineError(.timeout, "timeout: process ran past \(limits.timeout.milliseconds) ms",
                                                       plugin: context.info.id, recordNumber: items[k].number))
                }
            }
        }
        return results.map { $0 ?? .abandoned }
    }

    /// One call, no timer: the batch's sweeper enforces the timeout. What it hands over (a new
    /// record, emits) is charged to the host budget at once, so the records a batch has done
    /// count while the rest are in flight; past the budget the call fails.
    func callOnce(_ item: Item, _ context: PluginContext, _ ledger: Ledger? = nil) async -> ItemResult {
        do {
            let d = try await process(item.record, context)
            let emitted = context.end()
            let out: Item? = switch d {
            case .pass: item
            case .replace(let r): Item(number: item.number, record: r)
            case .drop: nil
            }
            if let ledger {
                var bytes = HostBudget.bytes(emitted)
                if case .replace = d, let out { bytes += out.hostBytes }
                if bytes > 0, !ledger.charge(bytes) {
                    return .failed(PipelineError(.memory, "not enough host memory: the call hands over \(bytes >> 10) KiB "
                                                 + "(\(emitted.count) emitted records) while the records in flight fill the host budget (--host-memory-mb)",
                                                 plugin: context.info.id, recordNumber: item.number))
                }
            }
            return .done(record: out, emitted: emitted)
        } catch {
            _ = context.end()
            return .failed(PipelineError.wrap(error, plugin: context.info.id, recordNumber: item.number))
        }
    }
}

/// What one record's call produced.
public enum ItemResult: Sendable {
    /// The call succeeded: `emitted` records first, then `record` unless it was dropped.
    case done(record: Item?, emitted: [Item])
    /// The call failed; the record is to be handled by the plugin's `on_error` policy.
    case failed(PipelineError)
    /// The call was never made: the run was stopping (`CallLimits.stop`).
    case abandoned
}

extension Plugin {
    public var enforcesTimeout: Bool { true }
    public func interrupt() {}
    public func setup(_ context: PluginContext) async throws {}
    public func tick(_ context: PluginContext) async throws {}
    public func flush(_ context: PluginContext) async throws {}
    public func teardown(_ context: PluginContext) async {}

    public func processBatch(_ items: [Item], _ context: PluginContext, _ limits: CallLimits) async -> [ItemResult] {
        var results: [ItemResult] = []
        results.reserveCapacity(items.count)
        for item in items {
            results.append(limits.stopping ? .abandoned : await processOne(item, context, limits))
        }
        return results
    }

    /// One record through `process`, with the timeout: the call is cancelled when it runs
    /// past it, and the record fails with a timeout error. Cancellation in Swift is
    /// cooperative: a plugin that ignores it holds its stage until it returns; its record
    /// then fails as a timeout all the same, and the run goes on.
    func processOne(_ item: Item, _ context: PluginContext, _ limits: CallLimits) async -> ItemResult {
        context.begin(recordNumber: item.number)
        let record = item.record
        let outcome: Result<Disposition, any Error>
        if enforcesTimeout {
            outcome = await Self.race(UncheckedPlugin(self), record, context, limits.timeout)
        } else {
            do { outcome = .success(try await process(record, context)) } catch { outcome = .failure(error) }
        }
        let emitted = context.end()
        switch outcome {
        case .success(let d):
            let out: Item? = switch d {
            case .pass: item
            case .replace(let r): Item(number: item.number, record: r)
            case .drop: nil
            }
            return .done(record: out, emitted: emitted)
        case .failure(let e):
            return .failed(PipelineError.wrap(e, plugin: context.info.id, recordNumber: item.number))
        }
    }

    /// Runs `process` against a timer; the loser is cancelled.
    static func race(_ box: UncheckedPlugin, _ record: Record, _ context: PluginContext,
                     _ timeout: Duration) async -> Result<Disposition, any Error> {
        await withTaskGroup(of: Result<Disposition, any Error>?.self) { group in
            group.addTask {
                do { return .success(try await box.plugin.process(record, context)) } catch { return .failure(error) }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return Task.isCancelled ? nil : .failure(PipelineError(.timeout, "timeout: process ran past \(timeout)"))
            }
            var first: Result<Disposition, any Error>?
            while first == nil, let next = await group.next() { first = next }
            group.cancelAll()
            return first ?? .failure(PipelineError(.cancelled, "cancelled"))
        }
    }
}

/// Lets the timeout race run the plugin's call in a child task.
struct UncheckedPlugin: @unchecked Sendable {
    // Safe because the pipeline never calls one instance twice at once: the racing child task
    // is the only caller, and the task group waits for it before the next call.
    let plugin: any Plugin
    init(_ plugin: any Plugin) { self.plugin = plugin }
}

extension PipelineError {
    /// Wraps what a plugin threw, keeping a PipelineError as it is.
    public static func wrap(_ error: any Error, plugin: String?, recordNumber: Int?) -> PipelineError {
        var e = (error as? PipelineError) ?? PipelineError(.plugin, String(describing: error))
        if e.plugin == nil { e.plugin = plugin }
        if e.recordNumber == nil, let recordNumber, recordNumber > 0 { e.recordNumber = recordNumber }
        return e
    }
}

/// A blocking Swift plugin, for authors who do not want `async`. Its calls run on the same
/// dedicated worker threads as Lua (never on Swift's cooperative pool), batched.
public protocol SyncPlugin: AnyObject {
    func setup(_ context: PluginContext) throws
    func process(_ record: Record, _ context: PluginContext) throws -> Disposition
    func tick(_ context: PluginContext) throws
    func flush(_ context: PluginContext) throws
    func teardown(_ context: PluginContext)
}

/// A sync plugin that can also do its work on the record's tape, never building a `Record`
/// (see `TapeFields`). The adapter calls `process(tape:_:)` instead of `process` whenever a
/// record arrives as a tape (from the JSON reader or a Lua plugin); it must do the same.
public protocol TapeSyncPlugin: SyncPlugin {
    /// The record as it goes on (changed or not), or nil to drop it.
    func process(tape: Tape, _ context: PluginContext) throws -> Tape?
}

extension SyncPlugin {
    public func setup(_ context: PluginContext) throws {}
    public func tick(_ context: PluginContext) throws {}
    public func flush(_ context: PluginContext) throws {}
    public func teardown(_ context: PluginContext) {}
}
