import ArgumentParser
import LuaPipe
import LuaPipeCore
import LuaPipeRedis

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Load, validate and describe a pipeline; run nothing.")

    @Argument(help: "The pipeline manifest (YAML or JSON).") var manifest: String
    @Option(help: "Worker threads for Lua and synchronous Swift plugins (1 to 256).") var workers: Int = 2

    func validate() throws {
        if let m = Ranges.check(workers, Ranges.workers, "--workers") { throw ValidationError(m) }
    }

    func run() async throws {
        let pool = WorkerPool(count: 1)
        defer { pool.shutdown() }
        do {
            let m = try Manifest.load(path: manifest)
            let shared = try Run.sharedURL(m)
            let builder = PipelineBuilder(manifest: m, registry: LuaPipeCLI.registry(),
                                          options: .init(workers: workers), pool: pool)
            let resolved = try await builder.resolve()
            print("pipeline \(m.path): \(resolved.count) plugin\(resolved.count == 1 ? "" : "s"), in this order:")
            for (i, r) in resolved.enumerated() {
                var line = "  \(i + 1). \(r.id): \(r.name) \(r.version) [\(r.kind)]"
                if r.instances > 1 { line += " x\(r.instances) instances" }
                if let w = r.entry.when { line += " when \(w)" }
                line += " on_error=\(r.entry.onError.rawValue) timeout_ms=\(r.entry.timeoutMs)"
                if r.kind == "lua" { line += " memory_mb=\(r.entry.memoryMb)" }
                if let t = r.tickMs { line += " tick_ms=\(t)" }
                if let p = r.lua?.path { line += "\n     \(p)" }
                print(line)
            }
            if let d = builder.deadLetterPath { print("dead letters: \(d)") }
            if let shared { print("ctx.shared: in Redis, \(shared.endpoint), keys \(shared.prefix):KEY") }
            print("input errors: \(builder.onInputError.rawValue)")
        } catch {
            report(error)
            throw ExitCode(Exit.usage)
        }
    }
}

struct Plugins: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List discovered plugins: name, version, api, kind, description.")

    @Option(name: .customLong("path"), help: "A folder to look for plugins in (repeatable). Default: ./plugins and .")
    var paths: [String] = []

    func run() async throws {
        let dirs = paths.isEmpty ? ["plugins", "."] : paths
        let worker = WorkerThread(name: "plugins")
        defer { worker.shutdown() }
        let registry = LuaPipeCLI.registry()
        let found = await worker.run { Discovery.list(paths: dirs, registry: registry) }
        let width = max(4, found.map(\.name.count).max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
        print(pad("name", width) + "  " + pad("version", 9) + pad("api", 5) + pad("kind", 12) + "description")
        for f in found {
            var line = pad(f.name, width) + "  " + pad(f.version, 9) + pad("\(f.api)", 5) + pad(f.kind, 12) + f.description
            if let p = f.path { line += " (\(p))" }
            if let e = f.error { line += "  ERROR: \(e)" }
            print(line)
        }
    }
}
