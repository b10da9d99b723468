import LuaPipe
import LuaPipeCore
import LuaPipeTesting
import Testing

@Suite("Built-in native plugins")
struct BuiltinTests {
    static func run(_ entries: String, _ records: [Record], files: [String: String] = [:], asTapes: Bool = false) async throws -> [String] {
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
        let outcome = try await Pipeline(stages: builder.stages(try await builder.resolve())).run(source: ArraySource(records, asTapes: asTapes), sink: sink)
        if let e = outcome.error { throw e }
        return sink.lines
    }

    /// set, rename and remove edit a record that comes as a tape without building a Record:
    /// each case runs both ways and must give the same.
    static var edits: [(entry: String, input: Record, output: String)] { [
        ("set: {fields: {b: 2, c: [x], d: null}}", ["a": 1, "b": 1], #"{"a":1,"b":2,"c":["x"],"d":null}"#),
        ("set: {fields: {a: {x: 1}}}", ["a": [1, 2], "b": "y"], #"{"a":{"x":1},"b":"y"}"#),
        ("set: {fields: {k: 1}}", [:], #"{"k":1}"#),
        ("rename: {fields: {b: bee, missing: m}}", ["a": 1, "b": 2, "c": 3], #"{"a":1,"bee":2,"c":3}"#),
        ("rename: {fields: {c: a}}", ["a": 1, "b": 2, "c": 3], #"{"b":2,"a":3}"#),
        ("rename: {fields: {a: c}}", ["a": 1, "b": 2, "c": 3], #"{"c":1,"b":2}"#),
        ("rename: {fields: {a: b, b: c}}", ["a": 1, "b": 2], #"{"c":1}"#),
        ("rename: {fields: {a: a}}", ["a": 1], #"{"a":1}"#),
        ("remove: {fields: [a, zz]}", ["a": 1, "b": 2], #"{"b":2}"#),
        ("remove: {fields: [a, b]}", ["a": [1], "b": ["c": 2]], #"{}"#),
    ] }  // computed: a static holding Records shows as a leak under LeakSanitizer

    @Test("set, rename and remove do the same to a record and to a tape",
          arguments: edits.indices, [false, true])
    func edit(_ index: Int, asTapes: Bool) async throws {
        let (entry, input, output) = Self.edits[index]
        let colon = entry.firstIndex(of: ":")!
        let yaml = "  - use: \(entry[..<colon])\n    config: \(entry[entry.index(after: colon)...].trimmingPrefix(" "))\n"
        let out = try await Self.run(yaml, [input], asTapes: asTapes)
        #expect(out == [output], "\(entry)")
    }

    @Test("sample keeps records 1, N+1, 2N+1", arguments: [false, true])
    func sample(asTapes: Bool) async throws {
        let out = try await Self.run("  - use: sample\n    config: {every: 3}\n", (1...7).map { ["n": .int(Int64($0))] }, asTapes: asTapes)
        #expect(out == [#"{"n":1}"#, #"{"n":4}"#, #"{"n":7}"#])
    }

    @Test("dedupe drops a key seen among the last N keys", arguments: [false, true])
    func dedupe(asTapes: Bool) async throws {
        let ids: [Int64] = [1, 2, 1, 3, 4, 1]
        let out = try await Self.run("  - use: dedupe\n    config: {key: [id], capacity: 2}\n", ids.map { ["id": .int($0)] }, asTapes: asTapes)
        #expect(out == [#"{"id":1}"#, #"{"id":2}"#, #"{"id":3}"#, #"{"id":4}"#, #"{"id":1}"#])
        // A key of several fields, one of them missing (null), one a nested value.
        let records: [Record] = [["a": 1, "b": ["x": [1]]], ["a": 1, "b": ["x": [2]]], ["a": 1, "b": ["x": [1]], "c": 0], ["b": ["x": [1]]], ["a": .null, "b": ["x": [1]]]]
        let two = try await Self.run("  - use: dedupe\n    config: {key: [a, b]}\n", records, asTapes: asTapes)
        #expect(two == [#"{"a":1,"b":{"x":[1]}}"#, #"{"a":1,"b":{"x":[2]}}"#, #"{"b":{"x":[1]}}"#])
    }

    @Test("throttle spaces records by awaiting")
    func throttle() async throws {
        let clock = ContinuousClock()
        let started = clock.now
        let out = try await Self.run("  - use: throttle\n    config: {per_second: 50}\n", (1...6).map { ["n": .int(Int64($0))] })
        #expect(out.count == 6)
        #expect(clock.now - started >= .milliseconds(90))  // 5 gaps of 20 ms: the plugin's contract, not a speed claim
    }

    @Test("lookup copies fields from the matching row of a JSON Lines table", arguments: [false, true])
    func lookup(asTapes: Bool) async throws {
        let out = try await Self.run("  - use: lookup\n    config: {file: rows.jsonl, key: k, fields: [v, w]}\n",
                                     [["k": "a"], ["k": "zz"], ["k": 2], ["k": 2, "v": "old", "z": 0], ["j": 1]],
                                     files: ["rows.jsonl": "{\"k\":\"a\",\"v\":1,\"w\":[]}\n\n{\"k\":2,\"v\":\"two\"}\r\n"],
                                     asTapes: asTapes)
        #expect(out == [#"{"k":"a","v":1,"w":[]}"#, #"{"k":"zz"}"#, #"{"k":2,"v":"two"}"#, #"{"k":2,"v":"two","z":0}"#, #"{"j":1}"#])
    }

    @Test("a bad config is an error with what is expected, before any record", arguments: [
        ("  - use: set\n    config: {fields: 3}\n", "config.fields"),
        ("  - use: sample\n    config: {every: 0}\n", "config.every"),
        ("  - use: lookup\n    config: {file: nope.jsonl, key: k, fields: [v]}\n", "is not a file"),
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
