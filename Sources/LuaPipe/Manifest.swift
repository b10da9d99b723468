import LuaPipeCore
import Yams

/// A pipeline manifest (docs/reference.md), parsed and checked key by key: an unknown key, a wrong type
/// or value is an error naming the file, the line, the entry and what to do.
public struct Manifest: Sendable {
    public struct Entry: Sendable {
        public var index: Int
        public var line: Int
        public var use: String
        public var id: String?
        public var config: Value = .object(Record())
        public var when: String?
        public static let defaultTimeoutMs = 10_000
        public var timeoutMs = defaultTimeoutMs
        public var onError: ErrorPolicy = .fail
        public var maxErrors: Int?
        public var after: [String] = []
        public var before: [String] = []
        public var tickMs: Int?
        public var allow: [String] = []
        public var memoryMb = 256
        public var instances: Int?
        public var concurrency = 64
        /// "host:port" pairs HTTP requests may go to; nil: any host.
        public var httpHosts: [String]?
        public var enabled = true

        /// "plugins[2] (mask)" for messages.
        public var label: String { "plugins[\(index)] (\(id ?? use))" }
    }

    public var path: String
    public var directory: String
    public var api = 1
    public var pluginPaths: [String] = []
    public var deadLetter: String?
    public var onInputError: ErrorPolicy = .fail
    public var entries: [Entry] = []
    /// `shared: redis://HOST:PORT/PREFIX`: ctx.shared in Redis (the program that runs the
    /// manifest checks the URL and makes the store); nil: the in-process store.
    public var shared: String?
    /// "path:line" of the `shared` key, for messages about its URL.
    public var sharedLocation: String?

    static let topKeys = ["api", "plugin_paths", "dead_letter", "on_input_error", "shared", "plugins"]
    static let entryKeys = ["use", "id", "config", "when", "timeout_ms", "on_error", "max_errors", "after", "before",
                            "tick_ms", "allow", "memory_mb", "instances", "concurrency", "http_hosts", "enabled"]

    public static func load(path: String) throws(PipelineError) -> Manifest {
        let bytes = try FileIO.readManifest(path)
        return try parse(String(decoding: bytes, as: UTF8.self), path: path)
    }

    public static func parse(_ text: String, path: String) throws(PipelineError) -> Manifest {
        var m = Manifest(path: path, directory: FileIO.directory(of: FileIO.absolute(path)))
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw PipelineError(.manifest, "\(path): the manifest is empty; it needs at least `api: 1` and `plugins:`")
            }
            root = node
        } catch let e as PipelineError {
            throw e
        } catch {
            throw PipelineError(.manifest, "\(path): not valid YAML: \(error)")
        }
        var p = Parser(path: path)
        guard case .mapping(let top) = root else { throw p.error(root, nil, "the manifest must be a mapping with `api` and `plugins`") }
        var sawPlugins = false
        for (k, v) in top {
            let key = k.string ?? ""
            switch key {
            case "api":
                m.api = try p.int(v, nil, "api", range: 0...1_000_000)
                if m.api != 1 { throw p.error(v, nil, "api \(m.api) is not supported; this luapipe reads manifests of api 1") }
            case "plugin_paths": m.pluginPaths = try p.strings(v, nil, "plugin_paths").map { m.resolve($0) }
            case "dead_letter": m.deadLetter = m.resolve(try p.string(v, nil, "dead_letter"))
            case "on_input_error":
                m.onInputError = try p.policy(v, nil, "on_input_error", allowed: [.fail, .drop, .deadLetter])
            case "shared":
                let url = try p.string(v, nil, "shared")
                guard url.hasPrefix("redis://") else {
                    throw p.error(v, nil, "`shared` must be a URL redis://HOST:PORT/PREFIX (ctx.shared in Redis, keys stored as PREFIX:key); leave it out for the in-process store")
                }
                m.shared = url
                m.sharedLocation = "\(path)" + (v.mark.map { ":\($0.line)" } ?? "")
            case "plugins":
                sawPlugins = true
                guard case .sequence(let seq) = v else { throw p.error(v, nil, "`plugins` must be a list of entries (- use: NAME)") }
                for (i, node) in seq.enumerated() { m.entries.append(try p.entry(node, index: i)) }
            default:
                throw p.error(k, nil, "unknown key '\(key)'\(suggest(key, topKeys)); the top level takes \(topKeys.joined(separator: ", "))")
            }
        }
        if !sawPlugins { throw PipelineError(.manifest, "\(path): no `plugins:` list; add one with at least one `- use: NAME`") }
        if m.pluginPaths.isEmpty { m.pluginPaths = [m.directory + "/plugins", m.directory] }
        return m
    }

    /// A path relative to the manifest's folder.
    public func resolve(_ p: String) -> String { p.hasPrefix("/") || p.hasPrefix("redis://") ? p : directory + "/" + p }
}

/// "; did you mean 'timeout_ms'?" when a key is close to a known one.
func suggest(_ key: String, _ known: [String]) -> String {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        var row = Array(0...b.count)
        for (i, ca) in a.enumerated() {
            var prev = row[0]
            row[0] = i + 1
            for (j, cb) in b.enumerated() {
                let cur = row[j + 1]
                row[j + 1] = min(row[j + 1] + 1, row[j] + 1, prev + (ca == cb ? 0 : 1))
                prev = cur
            }
        }
        return row[b.count]
    }
    let best = known.map { ($0, distance(Array(key), Array($0))) }.min { $0.1 < $1.1 }
    if let best, best.1 <= 2 { return "; did you mean '\(best.0)'?" }
    return ""
}

/// Typed reads of YAML nodes with messages that point at the line.
private struct Parser {
    let path: String
    /// YAML nodes the manifest's configs may still expand to (one budget for the whole
    /// manifest, so an alias bomb cannot be spread over many entries).
    var nodes = maxNodes

    func error(_ node: Node, _ entry: String?, _ what: String) -> PipelineError {
        let line = node.mark.map { ":\($0.line)" } ?? ""
        return PipelineError(.manifest, "\(path)\(line): " + (entry.map { "\($0): " } ?? "") + what,
                             location: "\(path)\(line)")
    }

    func string(_ v: Node, _ entry: String?, _ key: String) throws(PipelineError) -> String {
        guard case .scalar(let s) = v else { throw error(v, entry, "`\(key)` must be a string") }
        return s.string
    }

    /// A plugin's name or an entry's id: it names the entry in every message, figure and
    /// trace event, so it is short (docs/reference.md, "Numbers").
    func name(_ v: Node, _ entry: String?, _ key: String) throws(PipelineError) -> String {
        let s = try string(v, entry, key)
        guard s.count <= 128 else { throw error(v, entry, "`\(key)` must be at most 128 characters (got \(s.count))") }
        return s
    }

    func int(_ v: Node, _ entry: String?, _ key: String, range: ClosedRange<Int>) throws(PipelineError) -> Int {
        let what = "`\(key)` must be a whole number from \(Ranges.describe(range))"
        guard case .scalar(let s) = v, s.style == .plain || s.style == .any else { throw error(v, entry, what) }
        guard let i = Int(s.string) else {
            let digits = s.string.drop(while: { $0 == "-" || $0 == "+" })
            let huge = !digits.isEmpty && digits.allSatisfy(\.isNumber)
            throw error(v, entry, what + (huge ? " (got \(s.string), which is out of range)" : " (got '\(s.string)')"))
        }
        if let message = Ranges.check(i, range, "`\(key)`") { throw error(v, entry, message) }
        return i
    }

    func bool(_ v: Node, _ entry: String?, _ key: String) throws(PipelineError) -> Bool {
        guard case .scalar(let s) = v, s.style == .plain || s.style == .any, let b = v.bool else {
            throw error(v, entry, "`\(key)` must be true or false")
        }
        return b
    }

    func strings(_ v: Node, _ entry: String?, _ key: String) throws(PipelineError) -> [String] {
        if case .scalar(let s) = v { return [s.string] }
        guard case .sequence(let seq) = v else { throw error(v, entry, "`\(key)` must be a list of strings") }
        var out: [String] = []
        for n in seq {
            guard case .scalar(let s) = n else { throw error(n, entry, "`\(key)` must be a list of strings") }
            out.append(s.string)
        }
        return out
    }

    func policy(_ v: Node, _ entry: String?, _ key: String, allowed: [ErrorPolicy]) throws(PipelineError) -> ErrorPolicy {
        let s = try string(v, entry, key)
        guard let p = ErrorPolicy(rawValue: s), allowed.contains(p) else {
            throw error(v, entry, "`\(key)` must be one of \(allowed.map(\.rawValue).joined(separator: ", ")) (got '\(s)')")
        }
        return p
    }

    /// The most YAML nodes a config may expand to, aliases followed: a 500-byte "billion
    /// laughs" of nested aliases would otherwise take minutes and gigabytes to expand.
    static let maxNodes = 1_000_000

    /// A config's value; fails past `maxNodes` nodes or `LP_MAX_DEPTH`-like nesting.
    func value(_ v: Node, _ entry: String, budget: inout Int, depth: Int = 0) throws(PipelineError) -> Value {
        budget -= 1
        if budget < 0 {
            throw error(v, entry, "the manifest's configs expand to more than \(Ranges.grouped(Self.maxNodes)) YAML nodes (aliases included); "
                             + "an alias nested in aliases grows exponentially: write the values out, or load them from a file")
        }
        if depth > 512 { throw error(v, entry, "`config` is nested deeper than 512 levels") }
        switch v {
        case .scalar(let s):
            if s.style == .plain || s.style == .any {
                if let i = Int64(s.string) { return .int(i) }
                if let b = v.bool { return .bool(b) }
                if v.null != nil { return .null }
                if let d = v.float, s.string.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) { return .double(d) }
            }
            return .string(s.string)
        case .sequence(let seq):
            var out: [Value] = []
            for n in seq { out.append(try value(n, entry, budget: &budget, depth: depth + 1)) }
            return .array(out)
        case .mapping(let map):
            var r = Record()
            for (k, val) in map { r[k.string ?? ""] = try value(val, entry, budget: &budget, depth: depth + 1) }
            return .object(r)
        case .alias: return .null
        }
    }

    mutating func entry(_ node: Node, index: Int) throws(PipelineError) -> Manifest.Entry {
        guard case .mapping(let map) = node else {
            throw error(node, "plugins[\(index)]", "an entry must be a mapping with at least `use: NAME`")
        }
        var e = Manifest.Entry(index: index, line: node.mark?.line ?? 0, use: "")
        var label = "plugins[\(index)]"
        for (k, v) in map where k.string == "use" || k.string == "id" {
            if case .scalar(let s) = v { label = "plugins[\(index)] (\(s.string.prefix(64)))" }
        }
        var sawUse = false
        for (k, v) in map {
            let key = k.string ?? ""
            switch key {
            case "use": e.use = try name(v, label, key); sawUse = true
            case "id": e.id = try name(v, label, key)
            case "config":
                guard case .mapping = v else { throw error(v, label, "`config` must be a mapping") }
                e.config = try value(v, label, budget: &nodes)
            case "when": e.when = try string(v, label, key)
            case "timeout_ms": e.timeoutMs = try int(v, label, key, range: Ranges.milliseconds)
            case "on_error": e.onError = try policy(v, label, key, allowed: ErrorPolicy.allCases)
            case "max_errors": e.maxErrors = try int(v, label, key, range: Ranges.maxErrors)
            case "after": e.after = try strings(v, label, key)
            case "before": e.before = try strings(v, label, key)
            case "tick_ms": e.tickMs = try int(v, label, key, range: Ranges.milliseconds)
            case "allow":
                e.allow = try strings(v, label, key)
                for a in e.allow where !["io", "os", "http"].contains(a) {
                    throw error(v, label, "`allow` takes io, os and http only (got '\(a)')")
                }
            case "memory_mb": e.memoryMb = try int(v, label, key, range: Ranges.memoryMb)
            case "instances": e.instances = try int(v, label, key, range: Ranges.workers)
            case "concurrency": e.concurrency = try int(v, label, key, range: Ranges.concurrency)
            case "http_hosts":
                let hosts = try strings(v, label, key)
                for h in hosts where HTTPRequest.hostPort("http://" + h) != h.lowercased() || !h.contains(":") {
                    throw error(v, label, "`http_hosts` takes host:port pairs, such as 127.0.0.1:8080 (got '\(h)')")
                }
                e.httpHosts = hosts.map { $0.lowercased() }
            case "enabled": e.enabled = try bool(v, label, key)
            default:
                throw error(k, label, "unknown key '\(key)'\(suggest(key, Manifest.entryKeys)); an entry takes \(Manifest.entryKeys.joined(separator: ", "))")
            }
        }
        if !sawUse || e.use.isEmpty {
            throw error(node, label, "missing `use`: name a discovered plugin, a .lua file or a native plugin")
        }
        return e
    }
}
