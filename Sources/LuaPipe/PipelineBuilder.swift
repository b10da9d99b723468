import LuaPipeCore
import LuaRuntime

/// Turns a manifest into runnable stages: finds every plugin, checks it, orders the entries,
/// and says what is wrong before any record is read.
public struct PipelineBuilder: Sendable {
    public struct Options: Sendable {
        public var workers: Int
        public var deadLetter: String?
        public var onInputError: ErrorPolicy?
        /// Set for `--watch`: Lua plugins register for reloading.
        public var hotReload: HotReload?
        public init(workers: Int = 2, deadLetter: String? = nil, onInputError: ErrorPolicy? = nil, hotReload: HotReload? = nil) {
            self.workers = workers
            self.deadLetter = deadLetter
            self.onInputError = onInputError
            self.hotReload = hotReload
        }
    }

    /// A resolved entry, for `luapipe check` and for building stages.
    public struct Resolved: Sendable {
        public var entry: Manifest.Entry
        public var id: String
        public var name: String
        public var version: String
        public var kind: String
        public var description: String
        public var parallel: Bool
        public var instances: Int
        public var tickMs: Int?
        public var lua: LuaPluginSource?
        public var native: PluginRegistry.Entry?
    }

    public let manifest: Manifest
    public let registry: PluginRegistry
    public let options: Options
    public let pool: WorkerPool

    public init(manifest: Manifest, registry: PluginRegistry, options: Options, pool: WorkerPool) {
        self.manifest = manifest
        self.registry = registry
        self.options = options
        self.pool = pool
    }

    /// The dead-letter file in force (`--dead-letter` wins over the manifest).
    public var deadLetterPath: String? { options.deadLetter ?? manifest.deadLetter }
    public var onInputError: ErrorPolicy { options.onInputError ?? manifest.onInputError }

    private func fail(_ e: Manifest.Entry, _ what: String) -> PipelineError {
        PipelineError(.manifest, "\(manifest.path):\(e.line): \(e.label): \(what)", plugin: e.id ?? e.use,
                      location: "\(manifest.path):\(e.line)")
    }

    /// Resolves and orders every enabled entry. Loads Lua files on a worker thread.
    public func resolve() async throws(PipelineError) -> [Resolved] {
        var resolved: [Resolved] = []
        var ids = Set<String>()
        let worker = pool.workers[0]
        for e in manifest.entries where e.enabled {
            var r: Resolved
            if let file = Discovery.luaFile(for: e.use, in: manifest.pluginPaths, base: manifest.directory) {
                // Loaded with the entry's own limits, as the run will load it.
                let (memory, timeout) = (e.memoryMb << 20, Duration.milliseconds(e.timeoutMs))
                let result = await worker.run { () -> Result<LuaPluginSource, PipelineError> in
                    do {
                        return .success(try LuaPluginSource.inspect(path: file, options: .init(memoryLimit: memory), timeout: timeout))
                    } catch let err as PipelineError {
                        return .failure(err)
                    } catch {
                        return .failure(PipelineError(.manifest, "\(error)"))
                    }
                }
                let src: LuaPluginSource
                switch result {
                case .success(let s): src = s
                case .failure(let err): throw fail(e, "cannot load \(file): \(err.message)")
                }
                let isPath = e.use.contains("/") || e.use.hasSuffix(".lua")
                if !isPath && src.name != e.use {
                    throw fail(e, "\(file) declares name '\(src.name)', not '\(e.use)'; rename the file or fix its `name`")
                }
                r = Resolved(entry: e, id: e.id ?? src.name, name: src.name, version: src.version, kind: "lua",
                             description: src.description, parallel: src.parallel, instances: 1,
                             tickMs: e.tickMs ?? src.tickMilliseconds, lua: src, native: nil)
            } else if let n = registry.entry(e.use) {
                if !e.allow.isEmpty { throw fail(e, "`allow` grants Lua libraries; '\(e.use)' is a native plugin") }
                if n.builtin {
                    // A built-in checks its config when it is made: make one now, so a bad
                    // config is a manifest error (exit 2) for `check` and before `run` reads.
                    let ctx = PluginContext(info: PluginInfo(id: e.id ?? n.name, name: n.name, version: n.version), config: e.config)
                    let env = PluginRegistry.Environment(baseDirectory: manifest.directory, worker: worker,
                                                         httpHosts: e.httpHosts.map(Set.init), http: registry.http)
                    do { _ = try n.make(ctx, env) } catch {
                        throw fail(e, (error as? PipelineError)?.message ?? "\(error)")
                    }
                }
                r = Resolved(entry: e, id: e.id ?? n.name, name: n.name, version: n.version, kind: n.kind,
                             description: n.description, parallel: n.parallel, instances: 1, tickMs: e.tickMs, lua: nil, native: n)
            } else {
                let looked = manifest.pluginPaths.map { "\($0)/\(e.use).lua" }.joined(separator: ", ")
                throw fail(e, "plugin '\(e.use)' not found: no \(looked), no \(e.use)/init.lua, and no native plugin of that name (see `luapipe plugins`)")
            }
            if let n = e.instances, n > 1, !r.parallel {
                throw fail(e, "`instances: \(n)` needs a parallel plugin; '\(r.name)' does not declare `parallel = true`")
            }
            r.instances = r.parallel ? (e.instances ?? options.workers) : 1
            if ids.contains(r.id) { throw fail(e, "two entries have the id '\(r.id)'; give one of them another `id`") }
            ids.insert(r.id)
            if let w = e.when {
                let err = await worker.run { LuaWhenFilter.compileError(w) }
                if let err { throw fail(e, "bad `when` expression: \(err)") }
            }
            if e.onError == .deadLetter && deadLetterPath == nil {
                throw fail(e, "`on_error: dead-letter` needs a dead-letter file: set `dead_letter:` in the manifest or pass --dead-letter FILE")
            }
            resolved.append(r)
        }
        if onInputError == .deadLetter && deadLetterPath == nil {
            throw PipelineError(.manifest, "\(manifest.path): `on_input_error: dead-letter` needs a dead-letter file: set `dead_letter:` or pass --dead-letter FILE")
        }
        if resolved.isEmpty { throw PipelineError(.manifest, "\(manifest.path): no enabled plugins; add one under `plugins:`") }
        return try order(resolved)
    }

    /// Manifest order, adjusted by `after`/`before` (a stable topological sort).
    func order(_ items: [Resolved]) throws(PipelineError) -> [Resolved] {
        let index = Dictionary(uniqueKeysWithValues: items.enumerated().map { ($1.id, $0) })
        var edges = [[Int]](repeating: [], count: items.count)  // edges[a] contains b: a runs before b
        for (i, r) in items.enumerated() {
            for a in r.entry.after {
                guard let j = index[a] else { throw fail(r.entry, "`after: \(a)`: no entry has the id '\(a)'") }
                edges[j].append(i)
            }
            for b in r.entry.before {
                guard let j = index[b] else { throw fail(r.entry, "`before: \(b)`: no entry has the id '\(b)'") }
                edges[i].append(j)
            }
        }
        var indegree = [Int](repeating: 0, count: items.count)
        for e in edges { for j in e { indegree[j] += 1 } }
        var done = [Bool](repeating: false, count: items.count)
        var out: [Resolved] = []
        while out.count < items.count {
            guard let next = (0..<items.count).first(where: { !done[$0] && indegree[$0] == 0 }) else {
                throw PipelineError(.manifest, "\(manifest.path): the `after`/`before` constraints form a cycle: \(cycle(edges, done, items)); remove one of them")
            }
            done[next] = true
            out.append(items[next])
            for j in edges[next] { indegree[j] -= 1 }
        }
        return out
    }

    private func cycle(_ edges: [[Int]], _ done: [Bool], _ items: [Resolved]) -> String {
        // Walk from any remaining node along remaining edges until a node repeats.
        var path: [Int] = []
        var current = (0..<items.count).first { !done[$0] }!
        while !path.contains(current) {
            path.append(current)
            guard let n = edges[current].first(where: { !done[$0] }) else { break }
            current = n
        }
        let start = path.firstIndex(of: current) ?? 0
        return (path[start...] + [current]).map { items[$0].id }.joined(separator: " -> ")
    }

    /// The stages to run.
    public func stages(_ resolved: [Resolved]) -> [StageSpec] {
        resolved.map { r in
            let e = r.entry
            let timeout = Duration.milliseconds(e.timeoutMs)
            let info = PluginInfo(id: r.id, name: r.name, version: r.version)
            let pool = self.pool
            let registry = self.registry
            let hotReload = options.hotReload
            let env = PluginRegistry.Environment(baseDirectory: manifest.directory, worker: pool.workers[0],
                                                 httpHosts: e.httpHosts.map(Set.init), http: registry.http)
            var spec = StageSpec(info: info, kind: r.kind, config: e.config, instances: r.instances, onError: e.onError,
                                 maxErrors: e.maxErrors, tick: r.tickMs.map { .milliseconds($0) },
                                 limits: CallLimits(timeout: timeout, concurrency: e.concurrency)) { k, ctx in
                // Instance k of every parallel entry on worker k: consecutive entries then share
                // threads, and the pipeline runs them as one stage (one hop per batch).
                let worker = r.instances > 1 ? pool.workers[k % pool.workers.count] : pool.next()
                if let src = r.lua {
                    let options = LuaState.Options(memoryLimit: e.memoryMb << 20, root: src.folder,
                                                   allowIO: e.allow.contains("io"), allowOS: e.allow.contains("os"))
                    let waits = LuaWaits(allowHTTP: e.allow.contains("http"), httpHosts: e.httpHosts.map(Set.init),
                                         http: registry.http, functions: registry.allFunctions)
                    let plugin = LuaPlugin(source: src, settings: .init(options: options, when: e.when, timeout: timeout, waits: waits),
                                           context: ctx, on: worker)
                    hotReload?.register(plugin)
                    return plugin
                }
                let native = r.native!
                if native.kind == "swift-sync" {
                    return try await SyncPluginAdapter(on: worker) {
                        guard case .sync(let p) = try native.make(ctx, env) else { fatalError("registry kind mismatch") }
                        return p
                    }
                }
                guard case .async(let p) = try native.make(ctx, env) else { fatalError("registry kind mismatch") }
                return p
            }
            if r.lua == nil, let w = e.when {
                spec.makeFilter = { try await LuaWhenFilter(expression: w, on: pool.next()) }
            }
            return spec
        }
    }
}
