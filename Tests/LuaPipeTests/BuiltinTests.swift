import LuaPipe
import LuaPipeCore
import LuaPipeTesting
import Testing

@Suite("Built-in native plugins")
struct BuiltinTests {
    static func run(_ entries: String, _ records: [Record], files: [String: String] = [:]) async throws -> [String] {
        for (name, text) in files {
            try Array(text.utf8).withUnsafeBufferPointer { b in
                let fd = open(ScenarioTests.fixtures + "/" + name, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                defer { close(fd) }
                try FileIO.writeAll(fd, Array(b), what: name)
            }
        }
        let manifest = try Manifest.parse("api: 1\nplugins:\n" + entries, path: ScenarioTests.fixtures + "/builtins.yaml")
        let pool = WorkerPool(count: 1)
        defer { pool.shutdown() }
        let builder = PipelineBuilder(manifest: manifest, registry: PluginRegistry(), options: .init(workers: 1), pool: pool)
        let sink = CollectingSink()
        let outcome = try await Pipeline(stages: builder.stages(try await builder.resolve())).run(source: ArraySource(records), sink: sink)
        if let e = outcome.error { throw e }
        return sink.lines
    }

    @Test("set overwrites and appends fields")
    func set() async throws {
        let out = try await Self.run("  - use: set\n    config: {fields: {b: 2, c: [x], d: null}}\n", [["a": 1, "b": 1]])
        #expect(out == [#"{"a":1,"b":2,"c":["x"],"d":null}"#])
    }

    @Test("rename keeps the field's place in the key order")
    func rename() async throws {
        let out = try await Self.run("  - use: rename\n    config: {fields: {b: bee, missing: m}}\n", [["a": 1, "b": 2, "c": 3]])
        #expect(out == [#"{"a":1,"bee":2,"c":3}"#])
    }

    @Test("remove drops the named fields")
    func remove() async throws {
        let out = try await Self.run("  - use: remove\n    config: {fields: [a, zz]}\n", [["a": 1, "b": 2]])
        #expect(out == [#"{"b":2}"#])
    }

    @Test("sample keeps records 1, N+1, 2N+1")
    func sample() async throws {
        let out = try await Self.run("  - use: sample\n    config: {every: 3}\n", (1...7).map { ["n": .int(Int64($0))] })
        #expect(out == [#"{"n":1}"#, #"{"n":4}"#, #"{"n":7}"#])
    }

    @Test("dedupe drops a key seen among the last N keys")
    func dedupe() async throws {
        let ids: [Int64] = [1, 2, 1, 3, 4, 1]
        let out = try await Self.run("  - use: dedupe\n    config: {key: [id], capacity: 2}\n", ids.map { ["id": .int($0)] })
        #expect(out == [#"{"id":1}"#, #"{"id":2}"#, #"{"id":3}"#, #"{"id":4}"#, #"{"id":1}"#])
    }

    @Test("throttle spaces records by awaiting")
    func throttle() async throws {
        let clock = ContinuousClock()
        let started = clock.now
        let out = try await Self.run("  - use: throttle\n    config: {per_second: 50}\n", (1...6).map { ["n": .int(Int64($0))] })
        #expect(out.count == 6)
        #expect(clock.now - started >= .milliseconds(90))  // 5 gaps of 20 ms: the plugin's contract, not a speed claim
    }

    @Test("lookup copies fields from the matching row of a JSON Lines table")
    func lookup() async throws {
        let out = try await Self.run("  - use: lookup\n    config: {file: rows.jsonl, key: k, fields: [v, w]}\n",
                                     [["k": "a"], ["k": "zz"], ["k": 2]],
                                     files: ["rows.jsonl": "{\"k\":\"a\",\"v\":1,\"w\":[]}\n\n{\"k\":2,\"v\":\"two\"}\r\n"])
        #expect(out == [#"{"k":"a","v":1,"w":[]}"#, #"{"k":"zz"}"#, #"{"k":2,"v":"two"}"#])
    }

    @Test("a bad config fails setup with what is expected", arguments: [
        ("  - use: set\n    config: {fields: 3}\n", "config.fields"),
        ("  - use: sample\n    config: {every: 0}\n", "config.every"),
        ("  - use: lookup\n    config: {file: nope.jsonl, key: k, fields: [v]}\n", "cannot read"),
    ])
    func badConfig(_ entries: String, _ expected: String) async throws {
        await #expect { try await Self.run(entries, [["a": 1]]) } throws: { e in
            (e as? PipelineError)?.message.contains(expected) == true
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
