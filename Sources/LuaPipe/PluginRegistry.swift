import LuaPipeCore

/// Native (Swift) plugins by name: the built-ins of docs/reference.md and whatever an embedder adds.
public final class PluginRegistry: Sendable {
    /// What a factory gets besides the instance's context.
    public struct Environment: Sendable {
        /// The manifest's folder: relative paths in configs resolve against it.
        public var baseDirectory: String
        /// A worker thread for blocking work (file reads in setup, sync plugins).
        public var worker: WorkerThread
        /// The entry's `http_hosts` ("host:port"), nil when it has none.
        public var httpHosts: Set<String>?
        /// The run's HTTP client, when the program has one (`LuaPipeHTTP`).
        public var http: (any HTTPService)?

        public init(baseDirectory: String, worker: WorkerThread, httpHosts: Set<String>? = nil, http: (any HTTPService)? = nil) {
            self.baseDirectory = baseDirectory
            self.worker = worker
            self.httpHosts = httpHosts
            self.http = http
        }
    }

    /// An async function a host program offers to plugins: Lua calls it as
    /// `ctx.call(name, args)` (the call waits without holding its thread), Swift plugins
    /// through `PluginRegistry.function`. What it throws reaches Lua as an error with its
    /// message; cancellation (the caller's deadline) arrives as task cancellation.
    public typealias HostFunction = @Sendable (_ args: Value, _ context: PluginContext) async throws -> Value

    /// A plugin instance made by a factory: async plugins run on Swift concurrency, sync ones
    /// on the instance's worker thread.
    public enum Made {
        case async(any Plugin)
        case sync(any SyncPlugin)
    }

    public struct Entry: Sendable {
        public var name: String
        public var version: String
        public var description: String
        /// "swift" (async) or "swift-sync".
        public var kind: String
        public var parallel: Bool
        /// Trusted to return promptly: skips the per-call timeout race (built-ins).
        public var builtin: Bool
        public var make: @Sendable (PluginContext, Environment) throws -> Made
        /// The files an instance with this config reads (relative to the manifest's folder,
        /// given as the second argument), so a run can refuse to write over them.
        public var reads: (@Sendable (Record, String) -> [String])?

        public init(name: String, version: String, description: String, kind: String, parallel: Bool, builtin: Bool,
                    make: @escaping @Sendable (PluginContext, Environment) throws -> Made,
                    reads: (@Sendable (Record, String) -> [String])? = nil) {
            self.name = name
            self.version = version
            self.description = description
            self.kind = kind
            self.parallel = parallel
            self.builtin = builtin
            self.make = make
            self.reads = reads
        }
    }

    private let entries = Locked<[String: Entry]>([:])
    private let functions = Locked<[String: HostFunction]>([:])
    private let httpService = Locked<(any HTTPService)?>(nil)

    /// The HTTP client plugins use (`luapipe.http.request`, the `http` built-in), if any.
    public var http: (any HTTPService)? {
        get { httpService.withLock { $0 } }
        set { httpService.withLock { $0 = newValue } }
    }

    /// Offers `function` to plugins under `name` (`ctx.call(name, args)` in Lua).
    public func registerFunction(_ name: String, _ function: @escaping HostFunction) {
        functions.withLock { $0[name] = function }
    }

    public func function(_ name: String) -> HostFunction? { functions.withLock { $0[name] } }

    /// Every registered host function, by name.
    public var allFunctions: [String: HostFunction] { functions.withLock { $0 } }

    public init(builtins: Bool = true) {
        if builtins { Builtins.register(in: self) }
    }

    /// Registers an async Swift plugin type under `name`.
    public func register(_ name: String, version: String = "1.0.0", description: String = "", parallel: Bool = false,
                         make: @escaping @Sendable (PluginContext) throws -> any Plugin) {
        add(Entry(name: name, version: version, description: description, kind: "swift", parallel: parallel,
                  builtin: false, make: { ctx, _ in .async(try make(ctx)) }))
    }

    /// Registers a synchronous (blocking) Swift plugin type under `name`.
    public func registerSync(_ name: String, version: String = "1.0.0", description: String = "", parallel: Bool = false,
                             make: @escaping @Sendable (PluginContext) throws -> any SyncPlugin) {
        add(Entry(name: name, version: version, description: description, kind: "swift-sync", parallel: parallel,
                  builtin: false, make: { ctx, _ in .sync(try make(ctx)) }))
    }

    public func add(_ entry: Entry) { entries.withLock { $0[entry.name] = entry } }

    public func entry(_ name: String) -> Entry? { entries.withLock { $0[name] } }

    /// Changes a registered entry in place.
    public func update(_ name: String, _ change: (inout Entry) -> Void) {
        entries.withLock { if var e = $0[name] { change(&e); $0[name] = e } }
    }

    public var all: [Entry] { entries.withLock { $0.values.sorted { $0.name < $1.name } } }
}
