import Foundation
import Testing

@Suite("Manifest errors, end to end", .serialized)
struct ManifestTests {
    static func manifest(_ text: String) throws -> String {
        let dir = Binary.temp("m-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/plugins", withDestinationPath: Binary.fixtures + "/plugins")
        try text.write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        return dir + "/p.yaml"
    }

    @Test("each manifest error exits 2 before any record is read, naming the entry and what to do", arguments: [
        ("api: 1\nplugins:\n  - use: upper\n    timout_ms: 5\n", "p.yaml:4: plugins[0] (upper): unknown key 'timout_ms'; did you mean 'timeout_ms'?"),
        ("api: 1\nplugins:\n  - use: nope\n", "plugin 'nope' not found"),
        ("api: 2\nplugins:\n  - use: upper\n", "api 2 is not supported"),
        ("api: 1\nplugins:\n  - use: upper\n    when: \"record.x ==\"\n", "bad `when` expression"),
        ("api: 1\nplugins:\n  - use: upper\n    id: a\n    after: [b]\n  - use: lifecycle\n    id: b\n    after: [a]\n", "form a cycle: a -> b -> a"),
        ("api: 1\nplugins:\n  - use: upper\n  - use: upper\n", "two entries have the id 'upper'"),
        ("api: 1\nplugins:\n  - use: upper\n    on_error: dead-letter\n", "needs a dead-letter file"),
        ("api: 1\nplugins:\n  - use: upper\n    timeout_ms: soon\n", "`timeout_ms` must be a whole number"),
        ("api: 1\nplugins:\n  - use: upper\n    on_error: retry\n", "`on_error` must be one of fail, skip, drop, dead-letter"),
        ("api: 1\nplugins:\n  - use: lifecycle\n    instances: 2\n", "needs a parallel plugin"),
        ("api: 1\nplugins:\n  - use: upper\n    allow: [net]\n", "`allow` takes io, os and http only"),
        ("api: 1\nplugns: []\n", "unknown key 'plugns'; did you mean 'plugins'?"),
        ("api: 1\nplugins:\n  - use: upper\n    after: [ghost]\n", "no entry has the id 'ghost'"),
        ("api: 1\nplugins:\n  - id: x\n", "missing `use`"),
        ("api: [1\n", "not valid YAML"),
        (ManifestTests.aliasBomb, "configs expand to more than 1,000,000 YAML nodes"),
        (ManifestTests.spreadBomb, "configs expand to more than 1,000,000 YAML nodes"),
        ("api: 1\nplugins:\n  - use: upper\n    id: " + String(repeating: "x", count: 129) + "\n", "`id` must be at most 128 characters (got 129)"),
        ("api: 1\nplugins:\n  - use: dedupe\n    config: {key: [a], capacity: 2.5}\n", "config.capacity: a whole number from 1 to 10,000,000"),
        ("api: 1\nplugins:\n  - use: http\n    config: {url: \"http://127.0.0.1:1/\", into: g, retries: 1.5}\n",
         "config.retries: a whole number from 0 to 10"),
    ])
    func manifestErrors(_ text: String, _ expected: String) async throws {
        let path = try Self.manifest(text)
        let r = try await Binary.runOffPool(["run", path], input: "{\"name\":\"a\"}\n")
        #expect(r.status == 2)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains(expected), "\(r.stderr)")
        #expect(!r.stderr.contains("setup ran"))
        let c = try await Binary.runOffPool(["check", path])
        #expect(c.status == 2)
    }

    @Test("a manifest that is a device, a FIFO nobody writes or a huge file is refused, not read without end")
    func manifestFiles() async throws {
        let fifo = Binary.temp("m-\(UUID().uuidString).fifo")
        mkfifo(fifo, 0o600)
        let sparse = Binary.temp("m-\(UUID().uuidString).yaml")
        FileManager.default.createFile(atPath: sparse, contents: nil)
        truncate(sparse, 1 << 34)  // 16 GiB, all hole
        defer { try? FileManager.default.removeItem(atPath: sparse) }
        for (path, message) in [("/dev/zero", "must be a file (or a pipe)"), (fifo, "did not end within 10 s"),
                                (sparse, "larger than the 16 MiB limit")] {
            let r = try await Binary.runOffPool(["check", path], timeout: 30)
            #expect(r.status == 2, "\(path): \(r.stderr)")
            #expect(r.stderr.contains(message), "\(path): \(r.stderr)")
        }
    }

    @Test("check refuses what run would refuse: a built-in's config, a lookup table that is not there")
    func checkBuiltins() async throws {
        for text in ["api: 1\nplugins:\n  - use: sample\n    config: {every: 0}\n",
                     "api: 1\nplugins:\n  - use: lookup\n    config: {file: nowhere.jsonl, key: a, fields: [b]}\n"] {
            let path = try Self.manifest(text)
            for command in ["check", "run"] {
                let r = try await Binary.runOffPool([command, path], input: "{}\n")
                #expect(r.status == 2, "\(command): \(r.stderr)")
                #expect(r.stderr.contains("config."), "\(r.stderr)")
            }
        }
    }

    /// A "billion laughs" of 700 bytes: nine levels of nine aliases each (9^9 strings).
    static let aliasBomb: String = {
        var lines = ["api: 1", "plugins:", "  - use: upper", "    config:", "      l0: &l0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]"]
        for i in 1...9 { lines.append("      l\(i): &l\(i) [" + Array(repeating: "*l\(i - 1)", count: 9).joined(separator: ", ") + "]") }
        return lines.joined(separator: "\n") + "\n"
    }()

    /// The same budget over the whole manifest: five entries of 9^6 (531,441) nodes each,
    /// every one under the limit on its own.
    static let spreadBomb: String = {
        var lines = ["api: 1", "plugins:"]
        for e in 0..<5 {
            lines += ["  - use: upper", "    id: u\(e)", "    config:",
                      "      l0: &e\(e)l0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]"]
            for i in 1...5 { lines.append("      l\(i): &e\(e)l\(i) [" + Array(repeating: "*e\(e)l\(i - 1)", count: 9).joined(separator: ", ") + "]") }
        }
        return lines.joined(separator: "\n") + "\n"
    }()

    @Test("a plugin whose declared name differs from its file name is refused")
    func nameMismatch() async throws {
        let path = try Self.manifest("api: 1\nplugins:\n  - use: other\n")
        try "return { name = 'upper', version = '1.0.0', api = 1, process = function() end }"
            .write(toFile: FileManager.default.temporaryDirectory.path + "/x", atomically: true, encoding: .utf8)
        let dir = (path as NSString).deletingLastPathComponent
        try FileManager.default.removeItem(atPath: dir + "/plugins")
        try FileManager.default.createDirectory(atPath: dir + "/plugins", withIntermediateDirectories: true)
        try "return { name = 'upper', version = '1.0.0', api = 1, process = function() end }"
            .write(toFile: dir + "/plugins/other.lua", atomically: true, encoding: .utf8)
        let r = try await Binary.runOffPool(["check", path])
        #expect(r.status == 2)
        #expect(r.stderr.contains("declares name 'upper', not 'other'"), "\(r.stderr)")
    }

    @Test("check prints the resolved pipeline in order with kinds and versions")
    func check() async throws {
        let path = try Self.manifest("api: 1\nplugins:\n  - use: upper\n  - use: set\n    config: {fields: {a: 1}}\n    before: [upper]\n")
        let r = try await Binary.runOffPool(["check", path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("1. set: set 1.0.0 [swift-sync]"), "\(r.stdout)")
        #expect(r.stdout.contains("2. upper: upper 1.0.0 [lua]"), "\(r.stdout)")
    }

    @Test("plugins lists Lua and native plugins")
    func plugins() async throws {
        let r = try await Binary.runOffPool(["plugins", "--path", Binary.fixtures + "/plugins"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("upper") && r.stdout.contains("lua"))
        #expect(r.stdout.contains("throttle") && r.stdout.contains("swift"))
    }
}
