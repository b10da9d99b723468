import LuaPipeCore
import LuaRuntime

/// Runs a Lua plugin's own `tests` table (docs/reference.md), for `luapipe test`: each test feeds its
/// input through a one-plugin pipeline (setup, process, flush, teardown) and compares every
/// output, flush emits included, or the error.
public enum PluginTests {
    public struct Result: Sendable {
        public var plugin: String
        public var name: String
        /// Empty when the test passed; otherwise what differs, one line each.
        public var problems: [String]
        public var passed: Bool { problems.isEmpty }
    }

    /// The plugin files a path names: the file itself, or the plugins in a folder.
    public static func files(_ path: String) -> [String] {
        if FileIO.directoryExists(path) {
            return FileIO.list(path).compactMap { name in
                if name.hasSuffix(".lua") { return path + "/" + name }
                if FileIO.fileExists(path + "/" + name + "/init.lua") { return path + "/" + name + "/init.lua" }
                return nil
            }
        }
        return [path]
    }

    public static func run(file: String, worker: WorkerThread) async -> [Result] {
        let loaded = await worker.run { () -> Swift.Result<(LuaPluginSource, Value), PipelineError> in
            do {
                // The limits a manifest entry has by default, as `luapipe run` would load it.
                let lua = try LuaState(options: .init(root: FileIO.directory(of: file)))
                let table = try lua.load(file: file, timeout: .milliseconds(Manifest.Entry.defaultTimeoutMs))
                let source = try LuaPluginSource.check(lua, table, path: file)
                let tests = try lua.tapeField(table, "tests")?.value() ?? .array([])
                return .success((source, tests))
            } catch let e as PipelineError {
                return .failure(e)
            } catch {
                return .failure(PipelineError(.plugin, "\(error)"))
            }
        }
        let source: LuaPluginSource, tests: Value
        switch loaded {
        case .success(let (s, t)): (source, tests) = (s, t)
        case .failure(let e): return [Result(plugin: file, name: "(load)", problems: [e.message])]
        }
        guard case .array(let cases) = tests else {
            return [Result(plugin: source.name, name: "(tests)", problems: ["`tests` must be a list of test tables"])]
        }
        var results: [Result] = []
        for (i, c) in cases.enumerated() {
            results.append(await runOne(c, index: i + 1, source: source, worker: worker))
        }
        return results
    }

    static func runOne(_ test: Value, index: Int, source: LuaPluginSource, worker: WorkerThread) async -> Result {
        let t = test.objectValue ?? Record()
        let name = t["name"]?.stringValue ?? "test \(index)"
        var result = Result(plugin: source.name, name: name, problems: [])
        let inputs: [Record]
        switch t["input"] {
        case .object(let r)?: inputs = [r]
        case .array(let a)?: inputs = a.compactMap(\.objectValue)
        default: inputs = []
        }
        let config = t["config"] ?? .object(Record())
        let info = PluginInfo(id: source.name, name: source.name, version: source.version)
        let spec = StageSpec(info: info, kind: "lua", config: config) { _, ctx in
            LuaPlugin(source: source, settings: .init(options: .init(root: source.folder)), context: ctx, on: worker)
        }
        let sink = TestSink()
        var failure: PipelineError?
        do {
            failure = try await Pipeline(stages: [spec]).run(source: TestSource(inputs), sink: sink).error
        } catch {
            failure = error  // setup failed
        }
        if let expected = t["expect_error"]?.stringValue {
            if let e = failure {
                if !e.message.contains(expected) { result.problems.append("expected an error containing \"\(expected)\", got: \(e.message)") }
            } else {
                result.problems.append("expected an error containing \"\(expected)\", but the plugin succeeded")
            }
            return result
        }
        if let e = failure {
            result.problems.append("unexpected error: \(e.message)")
            return result
        }
        let expected = (t["expect"]?.arrayValue ?? []).map { $0.objectValue ?? Record() }
        let got = sink.records
        if got.count != expected.count {
            result.problems.append("expected \(expected.count) output record\(expected.count == 1 ? "" : "s"), got \(got.count)")
        }
        for k in 0..<max(got.count, expected.count) {
            let e = k < expected.count ? expected[k] : nil
            let g = k < got.count ? got[k] : nil
            switch (e, g) {
            case (let e?, let g?): result.problems += diff(e, g, path: "output \(k + 1)")
            case (let e?, nil): result.problems.append("output \(k + 1): missing, expected \(JSONWriter.encode(e))")
            case (nil, let g?): result.problems.append("output \(k + 1): unexpected \(JSONWriter.encode(g))")
            default: break
            }
        }
        return result
    }

    /// Field-by-field differences; object key order does not matter here (a Lua table
    /// literal has none).
    static func diff(_ expected: Record, _ got: Record, path: String) -> [String] {
        var out: [String] = []
        for (k, v) in expected.fields {
            guard let g = got[k] else {
                out.append("\(path): field '\(k)': expected \(JSONWriter.encode(v)), got nothing")
                continue
            }
            if !same(v, g) { out.append("\(path): field '\(k)': expected \(JSONWriter.encode(v)), got \(JSONWriter.encode(g))") }
        }
        for (k, v) in got.fields where expected[k] == nil {
            out.append("\(path): field '\(k)': not expected, got \(JSONWriter.encode(v))")
        }
        return out
    }

    static func same(_ a: Value, _ b: Value) -> Bool {
        switch (a, b) {
        case (.object(let x), .object(let y)):
            return x.count == y.count && x.fields.allSatisfy { k, v in y[k].map { same(v, $0) } ?? false }
        case (.array(let x), .array(let y)):
            return x.count == y.count && zip(x, y).allSatisfy(same)
        // An empty Lua table in `expect` cannot say whether it is a list or an object.
        case (.object(let x), .array(let y)), (.array(let y), .object(let x)):
            return x.isEmpty && y.isEmpty
        default:
            return a == b
        }
    }
}

private final class TestSource: RecordSource {
    private let pending: Locked<[InputEvent]?>
    init(_ records: [Record]) {
        pending = Locked(records.enumerated().map { .record(Item(number: $0 + 1, record: $1)) })
    }
    func nextBatch(stop: StopFlag) async throws -> [InputEvent]? {
        pending.withLock { p in
            defer { p = nil }
            return p.flatMap { $0.isEmpty ? nil : $0 }
        }
    }
}

private final class TestSink: RecordSink {
    private let items = Locked<[Record]>([])
    func write(_ batch: [Item]) async throws { items.withLock { $0 += batch.map(\.record) } }
    func close() async throws {}
    var records: [Record] { items.withLock { $0 } }
}
