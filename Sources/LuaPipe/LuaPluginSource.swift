import LuaPipeCore
import LuaRuntime

/// A Lua plugin file and what its table declares (docs/reference.md), read and checked once.
public struct LuaPluginSource: Sendable {
    public var path: String
    public var name: String
    public var version: String
    public var api: Int
    public var description: String
    public var parallel: Bool
    /// The plugin's own `tick_ms` field, if it has one.
    public var tickMilliseconds: Int?
    public var hasTests: Bool
    /// The file calls functions that wait (luapipe.sleep, luapipe.http, ctx.call): its records'
    /// calls run as coroutines, many in flight at once. A plugin that waits without saying so
    /// in its own file (through a module) waits holding its thread.
    public var waits = false
    /// The file names `shared` (ctx.shared): with a store outside the process its calls wait,
    /// so such a plugin's records then run as coroutines too.
    public var namesShared = false

    /// The folder `require` may load from: the plugin's own.
    public var folder: String { path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "." }

    /// Loads the file in a fresh sandbox (on the calling thread: call it on a worker) and
    /// checks the plugin table.
    @available(*, noasync, message: "loads Lua: run it on a WorkerThread")
    public static func inspect(path: String, options: LuaState.Options = .init(), timeout: Duration = .seconds(10)) throws -> LuaPluginSource {
        var options = options
        options.root = options.root ?? (path.lastIndex(of: "/").map { String(path[..<$0]) } ?? ".")
        let lua = try LuaState(options: options)
        let table = try lua.load(file: path, timeout: timeout)
        var source = try check(lua, table, path: path)
        (source.waits, source.namesShared) = Self.waits(path)
        return source
    }

    static func check(_ lua: LuaState, _ table: LuaRef, path: String) throws -> LuaPluginSource {
        func fail(_ what: String) -> PipelineError {
            PipelineError(.manifest, "\(path): \(what)", location: path)
        }
        guard lua.type(of: table) == .table else {
            throw fail("a plugin file must return a table (local plugin = {...} ... return plugin)")
        }
        guard let name = lua.stringField(table, "name") else {
            throw fail("the plugin table needs a `name` string ([a-z0-9_-]+)")
        }
        guard !name.isEmpty, name.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 || $0 == 95 }) else {
            throw fail("plugin name '\(name)' must match [a-z0-9_-]+")
        }
        guard let version = lua.stringField(table, "version"), Self.isSemver(version) else {
            throw fail("plugin '\(name)' needs a `version` string in semver form, such as \"1.0.0\"")
        }
        guard let api = lua.integerField(table, "api") else {
            throw fail("plugin '\(name)' needs `api = 1` (the plugin API major version it was written for)")
        }
        guard api == 1 else {
            throw fail("plugin '\(name)' is written for plugin API \(api); this luapipe runs API 1")
        }
        guard lua.fieldType(table, "process") == .function else {
            throw fail("plugin '\(name)' needs a `process(record, ctx)` function (got \(lua.fieldTypeName(table, "process")))")
        }
        for f in ["setup", "tick", "flush", "teardown"] {
            let t = lua.fieldType(table, f)
            if t != .none && t != .function { throw fail("plugin '\(name)': `\(f)` must be a function (got \(lua.fieldTypeName(table, f)))") }
        }
        let parallel = lua.fieldType(table, "parallel") == .none ? false : lua.boolField(table, "parallel")
        guard let parallel else { throw fail("plugin '\(name)': `parallel` must be true or false") }
        if lua.fieldType(table, "tick_ms") != .none && lua.integerField(table, "tick_ms") == nil {
            throw fail("plugin '\(name)': `tick_ms` must be a whole number from \(Ranges.describe(Ranges.milliseconds))")
        }
        let tick = lua.integerField(table, "tick_ms").map(Int.init)
        if let tick, let message = Ranges.check(tick, Ranges.milliseconds, "plugin '\(name)': `tick_ms`") { throw fail(message) }
        return LuaPluginSource(path: path, name: name, version: version, api: Int(api),
                               description: lua.stringField(table, "description") ?? "", parallel: parallel,
                               tickMilliseconds: tick, hasTests: lua.fieldType(table, "tests") == .table)
    }

    /// Whether the file's text names a function that waits, and whether it names `shared`.
    static func waits(_ path: String) -> (Bool, Bool) {
        guard let bytes = try? FileIO.readRegular(path, limit: 16 << 20, what: "plugin file") else { return (false, false) }
        let text = String(decoding: bytes, as: UTF8.self)
        return (["luapipe.sleep", "luapipe.http", "ctx.call", ".sleep(", "http.request"].contains { text.contains($0) },
                text.contains("shared"))
    }

    static func isSemver(_ s: String) -> Bool {
        let core = s.split(separator: "-", maxSplits: 1).first.map(String.init) ?? s
        let parts = core.split(separator: "+").first?.split(separator: ".", omittingEmptySubsequences: false) ?? []
        return parts.count == 3 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
    }
}
