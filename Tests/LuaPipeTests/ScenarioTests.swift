import LuaPipe
import LuaPipeCore
import LuaPipeTesting
import Testing

/// One scenario suite, run unchanged over a Lua, a sync Swift and an async Swift
/// implementation of the same plugin: the pipeline cannot tell them apart.
@Suite("Scenarios over every plugin kind")
struct ScenarioTests {
    enum Kind: String, CaseIterable, Sendable { case lua, sync, async }

    static let fixtures: String = {
        let here = String(#filePath)
        return String(here[..<here.lastIndex(of: "/")!]) + "/Fixtures"
    }()

    static func registry(_ kind: Kind) -> PluginRegistry {
        let r = PluginRegistry()
        switch kind {
        case .lua: break
        case .sync:
            r.registerSync("scenario", parallel: true) { _ in ScenarioSync() }
            r.registerSync("ticker") { _ in TickerSync() }
        case .async:
            r.register("scenario", parallel: true) { _ in ScenarioAsync() }
            r.register("ticker") { _ in TickerAsync() }
        }
        r.registerSync("sleeper", parallel: true) { _ in Sleeper() }
        return r
    }

    /// Runs `entries` (manifest plugin entries, YAML) over `records` with the plugin of `kind`.
    static func run(_ kind: Kind, _ entries: String, _ records: [Record], shared: SharedStore = SharedStore(),
                    stop: StopFlag = StopFlag(), source: (any RecordSource)? = nil,
                    tracer: Tracer? = nil) async throws -> (Pipeline.Outcome, CollectingSink, CollectingSink) {
        let text = "api: 1\nplugin_paths: [\(kind == .lua ? "plugins" : "none")]\nplugins:\n" + entries
        let manifest = try Manifest.parse(text, path: fixtures + "/scenario.yaml")
        let pool = WorkerPool(count: 2)
        defer { pool.shutdown() }
        let builder = PipelineBuilder(manifest: manifest, registry: registry(kind), options: .init(workers: 2, deadLetter: "unused"), pool: pool)
        let stages = builder.stages(try await builder.resolve())
        let sink = CollectingSink(), dead = CollectingSink()
        let outcome = try await Pipeline(stages: stages, shared: shared, tracer: tracer).run(
            source: source ?? ArraySource(records, batchSize: 3), sink: sink, deadLetter: dead, stop: stop)
        return (outcome, sink, dead)
    }

    static let input: [Record] = [
        ["n": 1], ["n": 2, "action": "drop"], ["n": 3, "action": "replace"], ["n": 4, "action": "emit"], ["n": 5],
    ]

    @Test("every result kind, emit order and flush", arguments: Kind.allCases)
    func results(_ kind: Kind) async throws {
        let (outcome, sink, _) = try await Self.run(kind, "  - use: scenario\n    id: a\n    instances: 1\n", Self.input)
        #expect(outcome.error == nil)
        #expect(sink.lines == [
            #"{"n":1,"seen_a":true}"#, #"{"n":3,"replaced":true}"#, #"{"from":4,"i":1}"#, #"{"from":4,"i":2}"#,
            #"{"n":4,"action":"emit","seen_a":true}"#, #"{"n":5,"seen_a":true}"#, #"{"flushed":"a","seen":3}"#,
        ])
        let s = outcome.stats
        #expect(s.balanced && s.recordsIn == 5 && s.recordsOut == 7 && s.dropped == 1 && s.emitted == 3)
    }

    @Test("flush in pipeline order: the downstream flush sees what the upstream flush emitted", arguments: Kind.allCases)
    func flushOrder(_ kind: Kind) async throws {
        let (_, sink, _) = try await Self.run(kind, "  - use: scenario\n    id: a\n    instances: 1\n  - use: scenario\n    id: b\n    instances: 1\n", [["n": 1]])
        #expect(sink.lines == [
            #"{"n":1,"seen_a":true,"seen_b":true}"#, #"{"flushed":"a","seen":1,"seen_b":true}"#, #"{"flushed":"b","seen":2}"#,
        ])
    }

    @Test("setup in order before any record; teardown once each, in reverse order, also after a failure", arguments: Kind.allCases)
    func lifecycleOnFailure(_ kind: Kind) async throws {
        let shared = SharedStore()
        let (outcome, sink, _) = try await Self.run(kind, "  - use: scenario\n    id: a\n    instances: 1\n  - use: scenario\n    id: b\n    instances: 1\n",
                                                    [["n": 1], ["n": 2, "action": "fail"], ["n": 3]], shared: shared)
        #expect(outcome.error?.message.contains("boom at 2") == true, "\(String(describing: outcome.error))")
        #expect(outcome.error?.plugin == "a" && outcome.error?.recordNumber == 2)
        #expect(sink.lines == [#"{"n":1,"seen_a":true,"seen_b":true}"#])  // no flush after a failure
        #expect(shared.get("setup:a") == .int(1) && shared.get("setup:b") == .int(2))
        #expect(shared.get("teardown:b") == .int(3) && shared.get("teardown:a") == .int(4))
        #expect(outcome.stats.balanced, "\(outcome.stats.json)")
    }

    @Test("skip, drop and dead-letter give the same records whatever the kind", arguments: Kind.allCases)
    func policies(_ kind: Kind) async throws {
        let records: [Record] = [["n": 1], ["n": 2, "action": "fail"], ["n": 3]]
        let (_, skipped, _) = try await Self.run(kind, "  - use: scenario\n    instances: 1\n    on_error: skip\n", records)
        #expect(skipped.lines.prefix(3) == [#"{"n":1,"seen_scenario":true}"#, #"{"n":2,"action":"fail"}"#, #"{"n":3,"seen_scenario":true}"#])
        let (o, dropped, _) = try await Self.run(kind, "  - use: scenario\n    instances: 1\n    on_error: drop\n", records)
        #expect(dropped.lines.count == 3 && o.stats.dropped == 1 && o.stats.balanced)
        let (o2, _, dead) = try await Self.run(kind, "  - use: scenario\n    instances: 1\n    on_error: dead-letter\n", records)
        #expect(dead.records.count == 1 && o2.stats.deadLettered == 1 && o2.stats.balanced)
        #expect(dead.records.first?["record"] == .object(["n": 2, "action": "fail"]))
        #expect(dead.records.first?["record_number"] == .int(2))
        let (o3, _, _) = try await Self.run(kind, "  - use: scenario\n    instances: 1\n    on_error: skip\n    max_errors: 1\n", records)
        #expect(o3.stats.plugins.first?.disabled == true && o3.stats.plugins.first?.errors == 1)
    }

    /// Consecutive Lua (or sync Swift) entries whose instances share threads run as one
    /// stage; async entries never do. The outcomes must be the same either way.
    @Test("entries run as one stage keep their own policies, emits, flushes and figures", arguments: ErrorPolicy.allCases)
    func fusedStage(_ policy: ErrorPolicy) async throws {
        let entries = "  - use: scenario\n    id: a\n    instances: 2\n    on_error: skip\n"
            + "  - use: scenario\n    id: b\n    instances: 2\n    on_error: \(policy.rawValue)\n"
        let records: [Record] = (1...10).map { (n: Int64) -> Record in
            var r: Record = ["n": .int(n)]
            if n == 4 || n == 7 { r["action"] = "fail" }
            if n == 5 { r["action"] = "emit" }
            return r
        }
        var outcomes: [Kind: String] = [:]
        for kind in Kind.allCases {
            let tracer = Tracer()
            let (o, sink, dead) = try await Self.run(kind, entries, records, tracer: tracer)
            let s = o.stats
            // The trace names a fused stage's process calls after all its entries.
            let fused = String(decoding: tracer.json(), as: UTF8.self).contains(#""a+b""#)
            #expect(fused == (kind != .async), "\(kind)")
            #expect(s.balanced, "\(kind): \(s.json)")
            // Under `fail`, how far upstream got before the run stopped (and so how many of its
            // emits were abandoned) depends on timing.
            let figures = policy == .fail ? [] : s.plugins.map {
                "\($0.id) calls \($0.calls) errors \($0.errors) dropped \($0.dropped) emitted \($0.emitted)"
            }
            // A Lua error names its file (shortened by Lua when long) and line; Swift's does not.
            let letters = dead.lines.map { line -> String in
                guard let start = line.range(of: #""error":""#), let end = line.range(of: "scenario.lua:16: ") else { return line }
                return String(line[..<start.upperBound] + line[end.upperBound...])
            }
            let counts = policy == .fail ? "in \(s.recordsIn) out \(s.recordsOut)"
                : "in \(s.recordsIn) out \(s.recordsOut) failed \(s.failed) dead \(s.deadLettered)"
            outcomes[kind] = (sink.lines + letters + figures + [counts]).joined(separator: "\n")
        }
        #expect(outcomes[.lua] == outcomes[.async], "\(outcomes[.lua]!)\n---\n\(outcomes[.async]!)")
        #expect(outcomes[.sync] == outcomes[.async], "\(outcomes[.sync]!)\n---\n\(outcomes[.async]!)")
    }

    @Test("cancelling the run stops reading; records in flight finish and every instance is torn down", arguments: Kind.allCases)
    func cancellation(_ kind: Kind) async throws {
        let shared = SharedStore()
        let task = Task {
            try await Self.run(kind, "  - use: scenario\n    id: a\n    instances: 1\n", [], shared: shared, source: EndlessSource(every: .milliseconds(5)))
        }
        // Cancel once records flow (the plugin counts them in the shared store). The wait is
        // long: other suites' Lua runs on the cooperative threads may hold them for a while.
        let deadline = ContinuousClock.now + .seconds(180)
        while shared.get("seen") == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        task.cancel()
        let (outcome, sink, _) = try await task.value
        #expect(outcome.stats.recordsIn > 0 && outcome.stats.balanced, "\(outcome.stats.json)")
        #expect(sink.records.count == outcome.stats.recordsOut)
        #expect(shared.get("teardown:a") != nil)
    }

    @Test("a parallel plugin with 2 instances counts exactly and keeps input order", arguments: Kind.allCases)
    func parallelSharedCounter(_ kind: Kind) async throws {
        let records = (1...20_000).map { Record(["n": .int(Int64($0))]) }
        let shared = SharedStore()
        let (outcome, sink, _) = try await Self.run(kind, "  - use: scenario\n    id: p\n    instances: 2\n", records, shared: shared)
        #expect(outcome.error == nil)
        #expect(shared.get("seen") == .int(20_000))
        let ns = sink.records.compactMap { $0["n"]?.intValue }
        #expect(ns == (1...20_000).map(Int64.init))
    }

    @Test("blocking sync plugins and Lua never run on the cooperative pool")
    func blockingStaysOffThePool() async throws {
        // Every call of a blocking plugin notes whether it ran on a luapipe worker thread.
        let records = (1...6).map { _ in Record(["ms": 50]) }
        _ = try await Self.run(.sync, "  - use: sleeper\n    instances: 2\n", records)
        let sync = sleeperThreads.withLock { $0 }
        #expect(sync.count == 6 && sync.allSatisfy { $0 }, "\(sync)")
        // A Lua plugin's print runs on the thread of its state: the log handler notes it.
        let threads = Locked<[Bool]>([])
        let lua = await PluginHarness.run(lua: Self.fixtures + "/plugins/printer.lua", records: [["n": 1], ["n": 2]],
                                          onLog: { threads.withLock { $0.append(WorkerThread.onWorkerThread) } })
        #expect(lua.error == nil && lua.logs.count == 4, "\(lua.logs)")
        #expect(threads.withLock { $0 }.allSatisfy { $0 } && threads.withLock { $0 }.count == 4)
    }
}

