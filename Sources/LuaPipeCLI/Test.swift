import ArgumentParser
import LuaPipe
import LuaPipeCore

struct Test: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the plugins' own `tests` tables.")

    @Argument(help: "Plugin files, or folders of plugins.") var paths: [String]

    func run() async throws {
        let worker = WorkerThread(name: "luapipe-test")
        defer { worker.shutdown() }
        var passed = 0, failed = 0
        for path in paths {
            let files = PluginTests.files(path)
            if files.isEmpty { printError("luapipe: warning: no plugins in \(path)") }
            for file in files {
                for r in await PluginTests.run(file: file, worker: worker) {
                    if r.passed {
                        passed += 1
                        print("PASS \(r.plugin): \(r.name)")
                    } else {
                        failed += 1
                        print("FAIL \(r.plugin): \(r.name)")
                        for p in r.problems { print("    " + p) }
                    }
                }
            }
        }
        print("\(passed) passed, \(failed) failed")
        if failed > 0 { throw ExitCode(Exit.failed) }
    }
}
