import LuaPipeCore

/// Native (Swift) plugins by name: the built-ins of SPEC §3 and whatever an embedder adds.
public final class PluginRegistry: Sendable {
    /// What a factory gets besides the instance's context.
    public struct Environment: Sendable {
        /// The manifest's folder: relative paths in configs resolve against it.
        public var baseDirectory: String
        /// A worker thread for blocking work (file reads in setup, sync plugins).
        public var worker: WorkerThread
    }

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
