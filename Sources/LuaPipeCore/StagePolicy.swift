/// What one plugin's `on_error` made of a batch's results: worked out without waiting (so a
/// fused stage can do it on its worker thread between plugins), carried out by `commit`.
struct Applied: Sendable {
    /// The records that go on, in order: emits before their record.
    var out: [Item] = []
    var deadLetters: [Record] = []
    /// Every failed call, in order (for the figures and the log).
    var errors: [PipelineError] = []
    var emitted = 0
    var dropped = 0
    /// Records never called (the run was stopping), or called after a failure under `fail`.
    var abandoned = 0
    /// Under `fail`: the error that stops the run (its record counts as failed).
    var failure: PipelineError?
    /// The batch brought the plugin to `max_errors`: it is off from then on.
    var disables = false

    init(out: [Item] = []) { self.out = out }

    /// Applies `spec`'s policy; `mask` (the `when` filter) says which items were called.
    /// `errorsBefore` is the plugin's error count before this batch: at `max_errors` the
    /// plugin goes off, and the records after the one that brought it there pass unchanged
    /// (what their calls returned or emitted is discarded), in input order.
    init(_ spec: StageSpec, _ items: [Item], mask: [Bool]?, results: [ItemResult], errorsBefore: Int = 0) {
        out.reserveCapacity(items.count)
        var next = 0
        for (index, item) in items.enumerated() {
            if disables || (mask.map { !$0[index] } ?? false) {
                out.append(item)
                if mask?[index] ?? true { next += 1 }
                continue
            }
            let result = results[next]
            next += 1
            switch result {
            case .done(let record, let emitted):
                out.append(contentsOf: emitted)
                self.emitted += emitted.count
                if let record { out.append(record) } else { dropped += 1 }
            case .abandoned:
                abandoned += 1
            case .failed(var error):
                if error.recordNumber == nil, item.number > 0 { error.recordNumber = item.number }
                errors.append(error)
                switch spec.onError {
                case .fail:
                    failure = error
                    abandoned += items.count - index - 1
                    return
                case .skip:
                    out.append(item)
                case .drop:
                    dropped += 1
                case .deadLetter:
                    deadLetters.append([
                        "record": .object(item.record), "plugin": .string(spec.info.id),
                        "error": .string(error.message), "record_number": .int(Int64(item.number)),
                    ])
                }
                if let max = spec.maxErrors, errorsBefore + errors.count >= max { disables = true }
            }
        }
    }
}

/// One manifest entry inside a stage: its spec, instances and figures.
struct Member {
    let spec: StageSpec
    let instances: [Instance]
    var stats: PluginStats
    /// Records whose call of this entry has started and not returned (for a `RunMonitor`).
    let inFlight: InFlightCount

    /// Errors a policy handles are logged too, the first `loggedErrors` of each plugin.
    static let loggedErrors = 20

    /// Counts what `applied` says, logs handled errors, disables the plugin at `max_errors`.
    mutating func count(_ applied: Applied, run: RunState) {
        stats.emitted += applied.emitted
        stats.dropped += applied.dropped
        for error in applied.errors {
            stats.errors += 1
            if error.code == .timeout { stats.timeouts += 1 }
            if spec.onError != .fail { logFailure(error) }
        }
        if applied.disables, !stats.disabled, let max = spec.maxErrors {
            stats.disabled = true
            instances[0].context.logger.warning("disabled after \(stats.errors) errors (max_errors: \(max)); its records pass unchanged from now on")
        }
        let (e, d, a) = (applied.emitted, applied.dropped, applied.abandoned)
        if e > 0 || d > 0 || a > 0 { run.update { $0.emitted += e; $0.dropped += d; $0.abandoned += a } }
    }

    private func logFailure(_ error: PipelineError) {
        guard stats.errors <= Self.loggedErrors else { return }
        let logger = instances[0].context.logger
        let at = error.recordNumber.map { "record \($0): " } ?? ""
        logger.warning("\(at)\(error.message) (on_error: \(spec.onError.rawValue))")
        if stats.errors == Self.loggedErrors {
            logger.warning("further errors of this plugin are counted in the stats, not logged")
        }
    }
}
