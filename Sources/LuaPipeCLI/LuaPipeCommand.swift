import ArgumentParser
import LuaPipe
import LuaPipeCore
import LuaPipeHTTP

/// The `luapipe` command line as a library: a Swift program that registers its own native
/// plugins runs the same CLI with them available to manifests.
///
/// ```swift
/// import LuaPipeCLI
/// import MyPlugins
/// await LuaPipeCLI.main { registry in MyPlugins.register(in: registry) }
/// ```
public enum LuaPipeCLI {
    private static let registrations = Locked<[@Sendable (PluginRegistry) -> Void]>([])

    /// Parses the process's arguments and runs the command; exits the process.
    public static func main(registering register: (@Sendable (PluginRegistry) -> Void)? = nil) async {
        if let register { registrations.withLock { $0.append(register) } }
        bootstrapLogging()
        do {
            var command = try LuaPipeCommand.parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
            StderrWriter.shared.drain()
        } catch {
            // A usage error (a bad flag, a value out of its range) exits 2, as documented,
            // not ArgumentParser's 64.
            if LuaPipeCommand.exitCode(for: error) == .validationFailure {
                printError(LuaPipeCommand.fullMessage(for: error))
                StderrWriter.shared.drain()
                LuaPipeCommand.exit(withError: ExitCode(Exit.usage))
            }
            if LuaPipeCommand.exitCode(for: error) != .success || !(error is ExitCode) {
                // ArgumentParser prints the message of other errors itself: ours first.
                StderrWriter.shared.drain()
            }
            LuaPipeCommand.exit(withError: error)
        }
    }

    /// The built-in plugins and every registered native plugin.
    static func registry() -> PluginRegistry {
        let registry = PluginRegistry()
        HTTPPlugins.register(in: registry)
        for register in registrations.withLock({ $0 }) { register(registry) }
        return registry
    }
}

struct LuaPipeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "luapipe",
        abstract: "Runs pipelines of Lua and Swift plugins over JSON Lines.",
        version: "0.1.0",
        subcommands: [Run.self, Check.self, Plugins.self, Test.self, New.self]
    )
}

/// Prints to stderr.
func printError(_ s: String) {
    var s = s
    if !s.hasSuffix("\n") { s += "\n" }
    FileHandleStderr.write(s)
}

enum FileHandleStderr {
    static func write(_ s: String) {
        StderrWriter.shared.write(Array(s.utf8))
    }
}

/// Exit codes (docs/reference.md, "The command line").
enum Exit {
    static let ok: Int32 = 0
    static let failed: Int32 = 1
    static let usage: Int32 = 2
}

/// Reports an error the way users read it: what, where, and a traceback when Lua gave one.
func report(_ e: PipelineError) {
    var s = "luapipe: error: "
    if let plugin = e.plugin, !e.message.contains("plugins[") { s += "plugin '\(plugin)'" + (e.recordNumber.map { ", record \($0)" } ?? "") + ": " }
    else if let n = e.recordNumber, e.code != .input { s += "record \(n): " }
    s += e.message
    if let tb = e.traceback {
        let lines = tb.split(separator: "\n").prefix(8).map { "    " + $0.trimmingPrefix("\t") }
        s += "\n  traceback:\n" + lines.joined(separator: "\n")
    }
    printError(s)
}
