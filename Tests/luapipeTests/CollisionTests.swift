import Foundation
import Testing

/// No file is both read and written by a run, and no file is written twice: such a run is a
/// usage error (exit 2) and nothing is truncated.
@Suite("Path collisions, end to end")
struct CollisionTests {
    static let records = "{\"name\":\"a\"}\n{\"name\":\"b\"}\n"

    /// A folder with in.jsonl, a manifest naming `deadLetter`, and a symlink to in.jsonl.
    static func folder(_ name: String, deadLetter: String = "rejects.jsonl") throws -> String {
        let dir = Binary.temp("collide-\(name)")
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try records.write(toFile: dir + "/in.jsonl", atomically: true, encoding: .utf8)
        try "api: 1\nplugin_paths: [\(Binary.fixtures)/plugins]\ndead_letter: \(deadLetter)\nplugins:\n  - use: upper\n    on_error: dead-letter\n"
            .write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.jsonl", withDestinationPath: dir + "/in.jsonl")
        return dir
    }

    @Test("a written file that is a read one is refused before anything is opened", arguments: [
        ("dl-is-input", "in.jsonl", ["--input", "in.jsonl"], "the dead-letter file"),
        ("output-is-input", "rejects.jsonl", ["--input", "in.jsonl", "--output", "./in.jsonl"], "--output ./in.jsonl is the same file as --input"),
        ("through-symlink", "rejects.jsonl", ["--input", "link.jsonl", "--output", "in.jsonl"], "is the same file as --input link.jsonl"),
        ("stats-is-input", "rejects.jsonl", ["--input", "in.jsonl", "--stats-json", "in.jsonl"], "--stats-json in.jsonl is the same file"),
        ("trace-is-manifest", "rejects.jsonl", ["--input", "in.jsonl", "--trace", "p.yaml"], "the manifest"),
        ("flag-dl-is-input", "rejects.jsonl", ["--input", "in.jsonl", "--dead-letter", "link.jsonl"], "is the same file as --input"),
    ])
    func readAndWritten(_ name: String, _ deadLetter: String, _ flags: [String], _ message: String) async throws {
        let dir = try Self.folder(name, deadLetter: deadLetter)
        let r = try await Binary.runOffPool(["run", "p.yaml"] + flags, cwd: dir)
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
        #expect(try String(contentsOfFile: dir + "/in.jsonl", encoding: .utf8) == Self.records, "the input was changed")
        #expect(try String(contentsOfFile: dir + "/p.yaml", encoding: .utf8).contains("use: upper"))
    }

    @Test("stderr into the input or the output file is refused without a word written there; stdout and stderr sharing a file is not", arguments: [
        ("--input in.jsonl 2>>in.jsonl", Int32(2)),
        ("--input link.jsonl --output out.jsonl 2>>out.jsonl", 2),
        ("--input in.jsonl > both.txt 2>&1", 0),
    ])
    func stderrIntoFiles(_ redirect: String, _ status: Int32) async throws {
        let dir = try Self.folder("stderr-\(status)-\(redirect.count)")
        try "keep\n".write(toFile: dir + "/out.jsonl", atomically: true, encoding: .utf8)
        let r = try await Binary.runOffPool(["-c", "'\(Binary.path)' run p.yaml \(redirect)"], cwd: dir, executable: "/bin/bash")
        #expect(r.status == status, "\(redirect): \(r.stderr)")
        // Not even the refusal is written there: it went into the input (fifth blind round).
        #expect(try String(contentsOfFile: dir + "/in.jsonl", encoding: .utf8) == Self.records, "the input was changed")
        if status == 2 {
            #expect(try String(contentsOfFile: dir + "/out.jsonl", encoding: .utf8) == "keep\n", "the output was changed")
        }
    }

    @Test("two written files that are one, also before either exists")
    func writtenTwice() async throws {
        let dir = try Self.folder("twice")
        let r = try await Binary.runOffPool(["run", "p.yaml", "--input", "in.jsonl", "--output", "out.jsonl", "--dead-letter", "./out.jsonl"], cwd: dir)
        #expect(r.status == 2)
        #expect(r.stderr.contains("two writers would interleave"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.jsonl"))
    }

    @Test("standard input that is the dead-letter file is refused too")
    func stdinIsDeadLetter() async throws {
        let dir = try Self.folder("stdin")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", "'\(Binary.path)' run p.yaml --dead-letter in.jsonl < in.jsonl"]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.standardError = FileHandle.nullDevice
        try p.run()
        try await Binary.offPool { p.waitUntilExit() }
        #expect(p.terminationStatus == 2)
        #expect(try String(contentsOfFile: dir + "/in.jsonl", encoding: .utf8) == Self.records)
    }

    @Test("a Lua file in a plugin's module folder is never written (require could load it)")
    func moduleFolder() async throws {
        let dir = try Self.folder("module")
        try FileManager.default.createDirectory(atPath: dir + "/plugins", withIntermediateDirectories: true)
        try "local plugin = { name = 'p', version = '1.0.0', api = 1 }\nfunction plugin.process(r) r.v = require('helper').v end\nreturn plugin\n"
            .write(toFile: dir + "/plugins/p.lua", atomically: true, encoding: .utf8)
        try "return { v = 1 }\n".write(toFile: dir + "/plugins/helper.lua", atomically: true, encoding: .utf8)
        try "api: 1\nplugin_paths: [plugins]\nplugins:\n  - use: p\n".write(toFile: dir + "/m.yaml", atomically: true, encoding: .utf8)
        // Also through symlinks with other names, to a module that exists and to one that does not.
        try FileManager.default.createSymbolicLink(atPath: dir + "/to-helper.jsonl", withDestinationPath: "plugins/helper.lua")
        try FileManager.default.createSymbolicLink(atPath: dir + "/to-new.jsonl", withDestinationPath: dir + "/plugins/new.lua")
        for target in ["plugins/helper.lua", "plugins/new.lua", "to-helper.jsonl", "to-new.jsonl"] {
            let r = try await Binary.runOffPool(["run", "m.yaml", "--input", "in.jsonl", "--output", target], cwd: dir)
            #expect(r.status == 2, "\(target): \(r.stderr)")
            #expect(r.stderr.contains("is a Lua file in the folder plugin 'p' may load modules from"), "\(r.stderr)")
        }
        #expect(try String(contentsOfFile: dir + "/plugins/helper.lua", encoding: .utf8) == "return { v = 1 }\n")
        #expect(!FileManager.default.fileExists(atPath: dir + "/plugins/new.lua"))
    }

    @Test("character devices are exempt: /dev/null as output and dead-letter file")
    func devNull() async throws {
        let dir = try Self.folder("devnull")
        let r = try await Binary.runOffPool(["run", "p.yaml", "--input", "in.jsonl", "--output", "/dev/null", "--dead-letter", "/dev/null"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
    }
}
