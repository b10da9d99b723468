import LuaPipeCore
import LuaRuntime

/// Finds plugins (docs/reference.md): `NAME.lua`, then `NAME/init.lua`, in each plugin path in turn,
/// then the native registry.
public enum Discovery {
    /// The Lua file `use: NAME` names, if any. A `use` with a '/' or ending in .lua is a path.
    public static func luaFile(for use: String, in paths: [String], base: String) -> String? {
        if use.contains("/") || use.hasSuffix(".lua") {
            let p = use.hasPrefix("/") ? use : base + "/" + use
            return FileIO.fileExists(p) ? p : nil
        }
        for dir in paths {
            for candidate in [dir + "/" + use + ".lua", dir + "/" + use + "/init.lua"] where FileIO.fileExists(candidate) {
                return candidate
            }
        }
        return nil
    }

    /// Every plugin the paths hold and the registry knows, for `luapipe plugins`.
    public struct Found: Sendable {
        public var name: String
        public var version: String
        public var api: Int
        public var kind: String
        public var description: String
        public var path: String?
        public var error: String?
    }

    @available(*, noasync, message: "loads Lua: run it on a WorkerThread")
    public static func list(paths: [String], registry: PluginRegistry) -> [Found] {
        var found: [Found] = []
        var seen = Set<String>()
        for dir in paths {
            for entry in FileIO.list(dir) {
                var file: String?
                if entry.hasSuffix(".lua"), FileIO.fileExists(dir + "/" + entry) { file = dir + "/" + entry }
                else if FileIO.fileExists(dir + "/" + entry + "/init.lua") { file = dir + "/" + entry + "/init.lua" }
                guard let file else { continue }
                let stem = entry.hasSuffix(".lua") ? String(entry.dropLast(4)) : entry
                if seen.contains(stem) { continue }
                seen.insert(stem)
                do {
                    let s = try LuaPluginSource.inspect(path: file)
                    found.append(Found(name: s.name, version: s.version, api: s.api, kind: "lua", description: s.description, path: file))
                } catch {
                    found.append(Found(name: stem, version: "?", api: 0, kind: "lua", description: "", path: file, error: "\(error)"))
                }
            }
        }
        for e in registry.all where !seen.contains(e.name) {
            found.append(Found(name: e.name, version: e.version, api: 1, kind: e.kind, description: e.description))
        }
        return found
    }
}
