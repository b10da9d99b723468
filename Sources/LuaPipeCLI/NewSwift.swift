import LuaPipe

/// `luapipe new NAME --swift`: a Swift package with the plugin (a library target that
/// registers it), its own `luapipe` executable with the plugin built in, a test through
/// `LuaPipeTesting`, and an example manifest.
enum SwiftScaffold {
    /// The checkout this binary was built from: the default place to depend on luapipe.
    static var sourceRoot: String {
        var path = String(#filePath)
        for _ in 0..<3 { path = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]) }
        return path
    }

    /// "greet-user" -> "GreetUser".
    static func typeName(_ name: String) -> String {
        let parts = name.split(whereSeparator: { $0 == "-" || $0 == "_" })
        let joined = parts.map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
        return joined.first?.isNumber == true ? "P" + joined : joined
    }

    /// Module names the package imports or that Swift already has: a plugin whose type name
    /// is one of these would not build.
    static let reserved: Set<String> = [
        "LuaPipe", "LuaPipeCore", "LuaPipeCLI", "LuaPipeTesting", "LuaRuntime", "CLua", "CLuaShim", "CLuaPipeJSON",
        "Testing", "XCTest", "Foundation", "Swift", "Logging", "Yams", "Collections", "ArgumentParser", "Histogram",
        "Glibc", "Darwin", "Dispatch",
    ]

    /// The files, by path relative to the package folder.
    static func files(name: String, luapipe: String) -> [(String, String)] {
        let type = typeName(name)
        let isURL = luapipe.contains("://")
        let identity = String(luapipe.split(separator: "/").last ?? "luapipe")
            .replacingOccurrences(of: ".git", with: "").lowercased()
        let dependency = isURL ? ".package(url: \"\(luapipe)\", from: \"0.1.0\")" : ".package(path: \"\(luapipe)\")"
        let package = """
        // swift-tools-version: 6.0
        import PackageDescription

        let package = Package(
            name: "\(name)",
            platforms: [.macOS(.v15)],
            products: [
                .library(name: "\(type)", targets: ["\(type)"]),
                .executable(name: "\(name)-luapipe", targets: ["\(name)-luapipe"]),
            ],
            dependencies: [
                \(dependency),
            ],
            targets: [
                .target(name: "\(type)", dependencies: [
                    .product(name: "LuaPipe", package: "\(identity)"),
                    .product(name: "LuaPipeCore", package: "\(identity)"),
                ]),
                // luapipe's command line with this plugin built in: `swift run \(name)-luapipe run example.yaml`
                .executableTarget(name: "\(name)-luapipe", dependencies: [
                    "\(type)", .product(name: "LuaPipeCLI", package: "\(identity)"),
                ]),
                .testTarget(name: "\(type)Tests", dependencies: [
                    "\(type)", .product(name: "LuaPipeTesting", package: "\(identity)"),
                ]),
            ]
        )

        """
        let plugin = """
        import LuaPipe
        import LuaPipeCore

        /// \(name): adds a greeting field (replace this with what your plugin does).
        ///
        /// A synchronous plugin: luapipe runs it on its worker threads, never on Swift's
        /// cooperative pool, so it may block. For a plugin that awaits (network, timers),
        /// conform to `Plugin` instead, with `async` methods; see docs/guide.md of luapipe.
        public final class \(type)Plugin: SyncPlugin {
            private var greeting = "hello"

            public init() {}

            public func setup(_ context: PluginContext) throws {
                if let value = context.configRecord["greeting"] {
                    guard let text = value.stringValue else {
                        throw PipelineError(.setup, "config.greeting must be a string")
                    }
                    greeting = text
                }
            }

            public func process(_ record: Record, _ context: PluginContext) throws -> Disposition {
                var out = record
                out["greeting"] = .string(greeting)
                return .replace(out)
            }
        }

        public enum \(type) {
            /// Makes the plugin available to manifests as `use: \(name)`.
            public static func register(in registry: PluginRegistry) {
                registry.registerSync("\(name)", version: "0.1.0", description: "Adds a greeting field",
                                      parallel: true) { _ in \(type)Plugin() }
            }
        }

        """
        let main = """
        import LuaPipeCLI
        import \(type)

        await LuaPipeCLI.main { registry in \(type).register(in: registry) }

        """
        let tests = """
        import LuaPipeCore
        import LuaPipeTesting
        import Testing
        import \(type)

        @Suite("\(name)")
        struct \(type)Tests {
            @Test("adds the configured greeting to every record")
            func greets() async {
                let run = await PluginHarness.run(sync: { _ in \(type)Plugin() }, config: ["greeting": "hi"],
                                                  records: [["id": 1], ["id": 2]])
                #expect(run.error == nil)
                #expect(run.outputs == [["id": 1, "greeting": "hi"], ["id": 2, "greeting": "hi"]])
            }

            @Test("a greeting that is not a string fails setup, saying so")
            func badConfig() async {
                let run = await PluginHarness.run(sync: { _ in \(type)Plugin() }, config: ["greeting": 5],
                                                  records: [["id": 1]])
                #expect(run.error?.message.contains("config.greeting must be a string") == true)
            }
        }

        """
        let manifest = """
        # swift run \(name)-luapipe run example.yaml < example.jsonl
        api: 1
        plugins:
          - use: \(name)
            config: { greeting: hello }

        """
        let readme = """
        # \(name)

        A native Swift plugin for luapipe.

        - `swift test` runs its tests.
        - `swift run \(name)-luapipe run example.yaml < example.jsonl` runs it in a pipeline: the
          `\(name)-luapipe` executable is luapipe's command line with this plugin registered.
        - To use it in your own Swift program, depend on the `\(type)` library and call
          `\(type).register(in: registry)` on the `PluginRegistry` you hand to `PipelineBuilder`.

        """
        return [
            ("Package.swift", package),
            ("Sources/\(type)/\(type).swift", plugin),
            ("Sources/\(name)-luapipe/main.swift", main),
            ("Tests/\(type)Tests/\(type)Tests.swift", tests),
            ("example.yaml", manifest),
            ("example.jsonl", "{\"id\":1}\n{\"id\":2}\n"),
            ("README.md", readme),
            (".gitignore", ".build/\nPackage.resolved\n"),
        ]
    }
}
