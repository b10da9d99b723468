import LuaPipeCore

#if canImport(Glibc)
import Glibc
#endif

/// `luapipe run --watch`: reloads a Lua plugin whose file changed, between records.
///
/// Each `LuaPlugin` made for a watched run registers here. When a file's modification time
/// changes, every instance of it builds the new code (load and setup) on its own worker
/// thread, between records; only when that succeeded is the old instance torn down. If it
/// fails, the old instance stays and the error is logged. An instance with records in flight
/// (a plugin that waits) reloads once they are out (docs/reference.md, "The command line").
public final class HotReload: Sendable {
    private struct Entry {
        weak var plugin: LuaPlugin?
    }

    private let entries = Locked<[String: [Entry]]>([:])
    private let mtimes = Locked<[String: timespec]>([:])

    public init() {}

    func register(_ plugin: LuaPlugin) {
        let path = plugin.source.path
        entries.withLock { $0[path, default: []].append(Entry(plugin: plugin)) }
        if let m = Self.mtime(path) { mtimes.withLock { if $0[path] == nil { $0[path] = m } } }
    }

    static func mtime(_ path: String) -> timespec? {
        var st = stat()
        return stat(path, &st) == 0 ? st.st_mtim : nil
    }

    /// Checks every watched file once; reloads the changed ones. Returns the paths reloaded.
    @discardableResult
    public func poll() async -> [String] {
        let paths = entries.withLock { Array($0.keys) }
        var changed: [String] = []
        for path in paths {
            guard let now = Self.mtime(path) else { continue }
            let was = mtimes.withLock { m -> timespec? in
                defer { m[path] = now }
                return m[path]
            }
            if let was, was.tv_sec != now.tv_sec || was.tv_nsec != now.tv_nsec { changed.append(path) }
        }
        for path in changed {
            let plugins = entries.withLock { $0[path, default: []].compactMap(\.plugin) }
            for p in plugins { await p.reload() }
        }
        return changed
    }

    /// Polls every `interval` until cancelled.
    public func watch(every interval: Duration = .milliseconds(250)) -> Task<Void, Never> {
        Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                await poll()
            }
        }
    }
}
