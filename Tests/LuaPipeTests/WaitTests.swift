import LuaPipe
import LuaPipeCore
import LuaPipeTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The I/O scenario of plugins/slowio.lua, in Swift: a `ConcurrentPlugin`.
final class IOPlugin: ConcurrentPlugin {
    let lookup: PluginRegistry.HostFunction
    init(_ lookup: @escaping PluginRegistry.HostFunction) { self.lookup = lookup }

    func process(_ record: Record, _ context: PluginContext) async throws -> Disposition {
        try await Task.sleep(for: .milliseconds(record["ms"]?.intValue ?? 0))
        let answer = try await lookup(.object(["key": record["key"] ?? .null]), context)
        var r = record
        r["n"] = .int(Int64(context.recordNumber))  // Lua appends its new keys sorted: n, value
        r["value"] = answer.objectValue?["value"] ?? .null
        if record["emit"]?.boolValue == true { context.emit(["emitted_for": .int(Int64(context.recordNumber))]) }
        return .replace(r)
    }
}

/// Set when the `hang` host function saw its task cancelled.
let hangCancelled = Locked(0)

@Suite("Calls that wait: records in flight, from Lua and from Swift")
struct WaitTests {
    enum Kind: String, CaseIterable, Sendable { case lua, swift }

    static func registry() -> PluginRegistry {
        let r = PluginRegistry()
        let lookup: PluginRegistry.HostFunction = { args, _ in
            try await Task.sleep(for: .microseconds(200))
            return .object(["value": .string("v-" + (args.objectValue?["key"]?.stringValue ?? "?"))])
        }
        r.registerFunction("lookup", lookup)
        r.registerFunction("hang") { _, _ in
            do { try await Task.sleep(for: .seconds(30)) } catch { hangCancelled.withLock { $0 += 1 }; throw error }
            return .null
        }
        r.register("slowio", parallel: true) { _ in IOPlugin(lookup) }
        return r
    }

    static func run(_ kind: Kind?, _ entries: String, _ records: [Record], batch: Int = 256)
        async throws -> (Pipeline.Outcome, CollectingSink, CollectingSink) {
        let text = "api: 1\nplugin_paths: [\(kind == .swift ? "none" : "plugins")]\nplugins:\n" + entries
        let manifest = try Manifest.parse(text, path: ScenarioTests.fixtures + "/waits.yaml")
        let pool = WorkerPool(count: 2)
        defer { pool.shutdown() }
        let builder = PipelineBuilder(manifest: manifest, registry: registry(), options: .init(workers: 2, deadLetter: "unused"), pool: pool)
        let stages = builder.stages(try await builder.resolve())
        let sink = CollectingSink(), dead = CollectingSink()
        let outcome = try await Pipeline(stages: stages).run(source: ArraySource(records, batchSize: batch), sink: sink, deadLetter: dead)
        return (outcome, sink, dead)
    }

    @Test("the I/O scenario gives the same output from Lua and from a ConcurrentPlugin, in input order")
    func scenario() async throws {
        var rng = SystemRandomNumberGenerator()
        let records = (1...600).map { i -> Record in
            var r: Record = ["key": .string("k\(i % 13)"), "ms": .int(Int64.random(in: 0...6, using: &rng))]
            if i % 50 == 0 { r["emit"] = true }
            return r
        }
        var outputs: [Kind: [String]] = [:]
        for kind in Kind.allCases {
            let (outcome, sink, _) = try await Self.run(kind, "  - use: slowio\n    instances: 1\n    concurrency: 32\n", records, batch: 97)
            #expect(outcome.error == nil, "\(kind): \(String(describing: outcome.error))")
            #expect(outcome.stats.balanced && outcome.stats.recordsOut == 612, "\(kind): \(outcome.stats.json)")
            let p = outcome.stats.plugins[0]
            #expect(p.inFlightMax > 4 && p.waitNanos > 0, "\(kind): in flight \(p.inFlightMax), waited \(p.waitNanos) ns")
            outputs[kind] = sink.lines
        }
        #expect(outputs[.lua] == outputs[.swift])
        let numbers = (outputs[.lua] ?? []).compactMap { line -> Int? in
            guard line.hasPrefix("{\"key\"") else { return nil }
            return Int(line.split(separator: "\"n\":").last!.prefix { $0.isNumber })
        }
        #expect(numbers == Array(1...600), "records keep input order whatever finished first")
    }

    @Test("a Lua call waits inside pcall, its own coroutines and __index; not where Lua cannot yield")
    func places() async throws {
        let modes = ["pcall", "wrap", "resume", "index", "gsub", "yield"]
        let (outcome, sink, dead) = try await Self.run(.lua, "  - use: waits\n    on_error: dead-letter\n",
                                                      modes.map { ["mode": .string($0)] })
        #expect(outcome.error == nil)
        #expect(sink.lines == [
            #"{"mode":"pcall","inside":true,"n":1,"ok":true}"#, #"{"mode":"wrap","first":2,"n":2,"second":20}"#,
            #"{"mode":"resume","got":"ab","n":3}"#, #"{"mode":"index","n":4,"v":"lazy-x"}"#,
        ])
        #expect(dead.lines.count == 2)
        #expect(dead.lines.first?.contains("luapipe.sleep cannot wait here: it was called from inside 'gsub'") == true, "\(dead.lines)")
        #expect(dead.lines.last?.contains("attempt to yield from outside a coroutine") == true, "\(dead.lines)")
    }

    @Test("a wait inside a load reader or an xpcall handler fails as Lua's own errors; a coroutine belongs to its record's call")
    func placesLuaCannotSuspend() async throws {
        let modes = ["reader", "handler", "keep", "take"]
        let (outcome, sink, _) = try await Self.run(.lua, "  - use: waits\n    on_error: dead-letter\n", modes.map { ["mode": .string($0)] })
        #expect(outcome.error == nil)
        #expect(sink.lines.count == 4, "\(sink.lines)")
        let line = { (i: Int) in sink.lines.count > i ? sink.lines[i] : "" }
        #expect(line(0).contains(#""loaded":false"#) && line(0).contains("cannot wait here"), "\(line(0))")
        #expect(line(1).contains(#""ok":false"#) && line(1).contains("error in error handling"), "\(line(1))")
        #expect(line(2) == #"{"mode":"keep","got":"done","n":3,"ok":true}"#, "\(line(2))")
        #expect(line(3).contains(#""ok":false"#) && line(3).contains("cannot resume a coroutine that waits"), "\(line(3))")
    }

    @Test("a deadline while waiting cancels the wait, fails that record alone (pcall cannot catch it), and the instance goes on")
    func timeoutWhileWaiting() async throws {
        let before = hangCancelled.withLock { $0 }
        let records: [Record] = [["mode": "hang"], ["mode": "swallow"], ["mode": "pcall"]]
        let (outcome, sink, dead) = try await Self.run(.lua, "  - use: waits\n    on_error: dead-letter\n    timeout_ms: 1000\n", records)
        #expect(outcome.error == nil)
        #expect(sink.lines == [#"{"mode":"pcall","inside":true,"n":3,"ok":true}"#])
        #expect(dead.lines.count == 2 && dead.lines.allSatisfy { $0.contains("timeout: the call ran past its time limit while it waited") },
                "\(dead.lines)")
        #expect(hangCancelled.withLock { $0 } > before, "the host function saw its task cancelled")
        #expect(outcome.stats.plugins[0].timeouts == 2)
    }

    @Test("concurrency 10,000 under memory_mb 64: every record of 10,000 waiting ones comes out, in order")
    func manyInFlight() async throws {
        let records = (1...10_000).map { i -> Record in ["key": .string("k\(i % 5)"), "ms": .int(Int64(20 + i % 7))] }
        let (outcome, sink, _) = try await Self.run(.lua, "  - use: slowio\n    instances: 1\n    concurrency: 10000\n    memory_mb: 64\n",
                                                    records, batch: 10_000)
        #expect(outcome.error == nil)
        #expect(outcome.stats.recordsOut == 10_000 && outcome.stats.balanced, "\(outcome.stats.json)")
        #expect(sink.lines.count == 10_000 && sink.lines.last?.contains("\"n\":10000") == true)
        #expect(outcome.stats.plugins[0].inFlightMax > 1_000, "records waited at once: \(outcome.stats.plugins[0].inFlightMax)")
    }
}
