import ArgumentParser
import LuaPipe
import LuaPipeCore

#if canImport(Glibc)
import Glibc
#endif

struct New: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Scaffold a Lua plugin (or, with --swift, a Swift plugin package) with a passing test.")

    @Argument(help: "The plugin's name: [a-z0-9_-]+.") var name: String
    @Option(help: "The folder to create it in.") var dir: String = "."
    @Flag(help: "A Swift package: the plugin as a library that registers it, luapipe's CLI with it built in, a test.")
    var swift = false
    @Option(help: "With --swift: where the package gets luapipe from, a path or a git URL (default: the checkout this luapipe was built from).")
    var luapipe: String?

    func validate() throws {
        guard !name.isEmpty, name.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 || $0 == 95 }) else {
            throw ValidationError("a plugin name must match [a-z0-9_-]+ (got '\(name)')")
        }
    }

    func run() async throws {
        if swift { return try scaffoldSwift() }
        let file = dir + "/" + name + ".lua"
        if FileIO.fileExists(file) {
            printError("luapipe: error: \(file) exists; choose another name or remove it")
            throw ExitCode(Exit.usage)
        }
        let plugin = """
        -- \(name): describe what it does.
        -- Run its tests with: luapipe test \(name).lua
        ---@type luapipe.Plugin
        local plugin = {
          name = "\(name)",
          version = "0.1.0",
          api = 1,
          description = "Adds a greeting field",
          parallel = true,
        }

        local greeting

        ---@param config table
        ---@param ctx luapipe.Context
        function plugin.setup(config, ctx)
          greeting = config.greeting or "hello"
        end

        ---@param record luapipe.Record
        ---@param ctx luapipe.Context
        function plugin.process(record, ctx)
          record.greeting = greeting
        end

        plugin.tests = {
          { name = "adds the greeting", config = { greeting = "hi" }, input = { id = 1 },
            expect = { { id = 1, greeting = "hi" } } },
        }

        return plugin

        """
        try write(file, plugin)
        let typesDir = dir + "/.luapipe-types"
        mkdir(typesDir, 0o755)
        try write(typesDir + "/luapipe.lua", PluginTypes.text)
        let luarc = dir + "/.luarc.json"
        if !FileIO.fileExists(luarc) {
            try write(luarc, "{\n  \"runtime.version\": \"Lua 5.4\",\n  \"workspace.library\": [\".luapipe-types\"]\n}\n")
        }
        print("created \(file) (types for your editor: \(typesDir)/luapipe.lua, \(luarc))")
        print("next: luapipe test \(file)")
    }

    private func scaffoldSwift() throws {
        let root = dir + "/" + name
        if FileIO.fileExists(root) {
            printError("luapipe: error: \(root) exists; choose another name or remove it")
            throw ExitCode(Exit.usage)
        }
        let type = SwiftScaffold.typeName(name)
        if SwiftScaffold.reserved.contains(type) {
            printError("luapipe: error: '\(name)' would make a Swift module named \(type), which clashes with a module the package uses; choose another name")
            throw ExitCode(Exit.usage)
        }
        let source = luapipe ?? SwiftScaffold.sourceRoot
        if !source.contains("://") && !FileIO.fileExists(source + "/Package.swift") {
            printError("luapipe: error: no luapipe package at \(source); pass --luapipe PATH (a checkout) or --luapipe URL")
            throw ExitCode(Exit.usage)
        }
        for (path, text) in SwiftScaffold.files(name: name, luapipe: source) {
            let full = root + "/" + path
            var folder = ""
            for part in full.split(separator: "/", omittingEmptySubsequences: false).dropLast() {
                folder += (folder.isEmpty && !full.hasPrefix("/") ? "" : "/") + part
                if !folder.isEmpty { mkdir(folder, 0o755) }
            }
            try write(full, text)
        }
        print("created the Swift package \(root) (luapipe from \(source))")
        print("next: cd \(root) && swift test && swift run \(name)-luapipe run example.yaml --input example.jsonl")
    }

    private func write(_ path: String, _ text: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            printError("luapipe: error: cannot write \(path): \(String(cString: strerror(errno)))")
            throw ExitCode(Exit.usage)
        }
        defer { close(fd) }
        try FileIO.writeAll(fd, Array(text.utf8), what: path)
    }
}
