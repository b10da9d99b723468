import Foundation
import Testing

/// `records_in + emitted == records_out + dropped + dead_lettered + failed + abandoned` in every
/// run that ends, also when the output fails or closes; `failed` counts failed calls only.
@Suite("Accounting, policies and numeric ranges, end to end")
struct AccountingTests {
    static func input(_ n: Int) throws -> String {
        let path = Binary.temp("acct-\(n).jsonl")
        try (1...n).map { "{\"id\":\($0),\"name\":\"n\($0)\"}" }.joined(separator: "\n").appending("\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func shellOffPool(_ line: String) async throws -> (status: Int32, out: String) {
        try await Binary.offPool { try shell(line) }
    }

    /// Runs a shell line (with $LUAPIPE set to the binary) in the fixtures folder.
    static func shell(_ line: String) throws -> (status: Int32, out: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", line]
        p.environment = ["LUAPIPE": Binary.path, "PATH": "/usr/bin:/bin"]
        p.currentDirectoryURL = URL(fileURLWithPath: Binary.fixtures)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        let o = Collector(out.fileHandleForReading)
        try p.run()
        p.waitUntilExit()
        return (p.terminationStatus, o.text())
    }

    @Test("an output that fails (/dev/full): exit 1, every record read is accounted for", arguments: [1, 3, 16])
    func outputFails(_ workers: Int) async throws {
        let stats = Binary.temp("full-\(workers).json")
        let r = try await Self.shellOffPool("\"$LUAPIPE\" run stamps.yaml --workers \(workers) --input '\(try Self.input(20_000))' --stats-json '\(stats)' > /dev/full")
        #expect(r.status == 1)
        let s = try Binary.stats(stats)
        #expect(Binary.balanced(s), "\(s)")
        #expect(s["records_out"] as? Int == 0 && (s["abandoned"] as? Int ?? 0) > 0 && s["failed"] as? Int == 0, "\(s)")
    }

    @Test("a reader that goes away (| head -n 5): exit 0, every record read is accounted for", arguments: [1, 3, 16])
    func closedPipe(_ workers: Int) async throws {
        let stats = Binary.temp("head-\(workers).json")
        let r = try await Self.shellOffPool("\"$LUAPIPE\" run stamps.yaml --workers \(workers) --input '\(try Self.input(50_000))' --stats-json '\(stats)' | head -n 5 > /dev/null; exit ${PIPESTATUS[0]}")
        #expect(r.status == 0)
        let s = try Binary.stats(stats)
        #expect(Binary.balanced(s), "\(s)")
        #expect((s["records_in"] as? Int ?? 0) > 0 && (s["abandoned"] as? Int ?? 0) > 0, "\(s)")
        // What the pipe took whole before it closed counts as written.
        #expect((s["records_out"] as? Int ?? 0) >= 5, "\(s)")
    }

    @Test("a line past 64 MiB is an input error under on_input_error, and the lines after it go on")
    func overlongLine() async throws {
        let path = Binary.temp("overlong.jsonl")
        var data = Data("{\"name\":\"a\"}\n{\"x\":\"".utf8)
        data.append(Data(repeating: UInt8(ascii: "y"), count: (64 << 20) + 1000))
        data.append(Data("\"}\n{\"name\":\"b\"}\n".utf8))
        try data.write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let stats = Binary.temp("overlong.json")
        let r = try await Binary.runOffPool(["run", "basic.yaml", "--input", path, "--on-input-error", "drop", "--stats-json", stats])
        #expect(r.status == 0, "\(r.stderr.prefix(300))")
        #expect(r.lines == [#"{"name":"A"}"#, #"{"name":"B"}"#])
        let s = try Binary.stats(stats)
        #expect(s["records_in"] as? Int == 3 && s["dropped"] as? Int == 1 && Binary.balanced(s), "\(s)")
    }

    @Test("under fail, `failed` is the one record whose call failed; those read after it are abandoned", arguments: [1, 3, 16])
    func failCountsOne(_ workers: Int) async throws {
        let stats = Binary.temp("failone-\(workers).json")
        let input = Binary.temp("failone.jsonl")
        try ((1...50).map { $0 == 20 ? "{\"id\":20,\"bad\":true}" : "{\"id\":\($0)}" }.joined(separator: "\n") + "\n")
            .write(toFile: input, atomically: true, encoding: .utf8)
        let r = try await Binary.runOffPool(["run", "failer.yaml", "--workers", "\(workers)", "--input", input, "--stats-json", stats])
        #expect(r.status == 1)
        #expect(r.lines.count == 19 && r.lines.last == #"{"id":19,"ok":true}"#, "\(r.lines.suffix(2))")
        let s = try Binary.stats(stats)
        #expect(s["failed"] as? Int == 1 && s["abandoned"] as? Int == 30, "\(s)")
        #expect(Binary.balanced(s))
    }

    @Test("max_errors: N disables the plugin at exactly the Nth error in input order", arguments: [
        (1, 1024, ""), (3, 1024, ""), (16, 1024, ""), (1, 1, ""), (3, 2, ""), (1, 1024, "    instances: 4\n"), (3, 7, "    instances: 4\n"),
    ])
    func maxErrors(_ workers: Int, _ batch: Int, _ extra: String) async throws {
        let dir = Binary.temp("maxerr-\(workers)-\(batch)-\(extra.count)")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "api: 1\nplugin_paths: [\(Binary.fixtures)/plugins]\nplugins:\n  - use: failer\n    on_error: skip\n    max_errors: 3\n\(extra)"
            .write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        // bad: 1, 3, 4 (the third error), then 6 and 8 must not even count.
        let bad: Set = [1, 3, 4, 6, 8]
        let lines = (1...10).map { bad.contains($0) ? "{\"id\":\($0),\"bad\":true}" : "{\"id\":\($0)}" }
        let r = try await Binary.runOffPool(["run", dir + "/p.yaml", "--workers", "\(workers)", "--batch-size", "\(batch)", "--stats-json", dir + "/s.json"],
                               input: lines.joined(separator: "\n") + "\n")
        #expect(r.status == 0, "\(r.stderr)")
        // Before the third error: good records marked; after it: every record unchanged.
        let expected = [#"{"id":1,"bad":true}"#, #"{"id":2,"ok":true}"#] + lines[2...]
        #expect(r.lines == Array(expected), "\(r.lines)")
        let p = (try Binary.stats(dir + "/s.json")["plugins"] as? [[String: Any]])?.first ?? [:]
        #expect(p["errors"] as? Int == 3 && p["disabled"] as? Bool == true, "\(p)")
    }

    @Test("numbers out of their range are usage errors that name the range", arguments: [
        ("timeout_ms: 9200000000000", "`timeout_ms` must be from 1 to 86,400,000 (got 9,200,000,000,000)"),
        ("timeout_ms: 0", "`timeout_ms` must be from 1 to 86,400,000 (got 0)"),
        ("memory_mb: 17592186044416", "`memory_mb` must be from 1 to 65,536"),
        ("memory_mb: 99999999999999999999999", "`memory_mb` must be a whole number from 1 to 65,536"),
        ("instances: 257", "`instances` must be from 1 to 256"),
        ("max_errors: 0", "`max_errors` must be from 1 to 2,147,483,647"),
        ("tick_ms: 86400001", "`tick_ms` must be from 1 to 86,400,000"),
    ])
    func manifestRanges(_ line: String, _ message: String) async throws {
        let path = Binary.temp("range-\(line.hashValue).yaml")
        try "api: 1\nplugin_paths: [\(Binary.fixtures)/plugins]\nplugins:\n  - use: stamp\n    \(line)\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        for command in [["run", path], ["check", path]] {
            let r = try await Binary.runOffPool(command, input: "{}\n")
            #expect(r.status == 2, "\(command): \(r.stderr)")
            #expect(r.stderr.contains(message), "\(r.stderr)")
        }
    }

    @Test("flags out of their range are usage errors (exit 2) that name the range", arguments: [
        (["--workers", "0"], "--workers must be from 1 to 256"),
        (["--workers", "100000"], "--workers must be from 1 to 256 (got 100,000)"),
        (["--batch-size", "0"], "--batch-size must be from 1 to 65,536"),
        (["--batch-size", "70000"], "--batch-size must be from 1 to 65,536"),
        (["--workers", "abc"], "invalid for '--workers"),
    ])
    func flagRanges(_ flags: [String], _ message: String) async throws {
        let r = try await Binary.runOffPool(["run", "basic.yaml"] + flags, input: "{}\n")
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }

    @Test("built-in configs are range-checked before any record", arguments: [
        ("sample", "{every: 0}", "config.every"), ("dedupe", "{key: [a], capacity: 0}", "config.capacity"),
        ("throttle", "{per_second: 0}", "config.per_second"),
    ])
    func builtinRanges(_ name: String, _ config: String, _ message: String) async throws {
        let path = Binary.temp("builtin-\(name).yaml")
        try "api: 1\nplugins:\n  - use: \(name)\n    config: \(config)\n".write(toFile: path, atomically: true, encoding: .utf8)
        let r = try await Binary.runOffPool(["run", path], input: "{}\n")
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }

    @Test("the dead letter of a line that is not UTF-8 keeps its exact bytes in input_base64")
    func deadLetterBytes() async throws {
        let dir = Binary.temp("dl-bytes")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var bytes = Data("{\"name\":\"a\"}\n{\"name\":\"".utf8)
        bytes.append(contentsOf: [0xC3, 0x28, 0xFF])
        bytes.append(contentsOf: Data("\"}\n{\"name\":\"ok\"}\n{oops}\n".utf8))
        try bytes.write(to: URL(fileURLWithPath: dir + "/in.jsonl"))
        let r = try await Binary.runOffPool(["run", "basic.yaml", "--input", dir + "/in.jsonl", "--on-input-error", "dead-letter",
                                "--dead-letter", dir + "/dl.jsonl"])
        #expect(r.status == 0, "\(r.stderr)")
        let letters = try String(contentsOfFile: dir + "/dl.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(letters.count == 2)
        let first = try JSONSerialization.jsonObject(with: Data(letters[0].utf8)) as! [String: Any]
        let original = Data(bytes.split(separator: 10)[1])
        #expect(Data(base64Encoded: first["input_base64"] as? String ?? "") == original)
        let second = try JSONSerialization.jsonObject(with: Data(letters[1].utf8)) as! [String: Any]
        #expect(second["input"] as? String == "{oops}" && second["input_base64"] == nil, "\(second)")
    }
}
