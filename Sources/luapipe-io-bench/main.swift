// luapipe with one more native plugin, for the I/O benchmark (P6b in scripts/bench-io.sh): a
// ConcurrentPlugin that awaits `ms` milliseconds per record, the way a plugin awaits a
// service. Built the way a user's program embeds luapipe.
import LuaPipe
import LuaPipeCLI
import LuaPipeCore

final class AwaitPlugin: ConcurrentPlugin {
    let delay: Duration
    init(_ config: Record) { delay = .milliseconds(config["ms"]?.intValue ?? 2) }
    func process(_ record: Record, _ context: PluginContext) async throws -> Disposition {
        try await Task.sleep(for: delay)
        var r = record
        r["waited"] = true
        return .replace(r)
    }
}

await LuaPipeCLI.main { registry in
    registry.register("await", description: "awaits `ms` milliseconds per record") { AwaitPlugin($0.configRecord) }
}
