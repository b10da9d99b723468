import Foundation
import Testing

@Suite("luapipe run, end to end", .serialized)
struct RunTests {
    @Test("records stream through in input order; blank lines, CRLF and a last line without newline")
    func basicRun() async throws {
        let r = try await Binary.runOffPool(["run", "basic.yaml"], input: "{\"name\":\"a\",\"n\":1}\r\n\n   \n{\"name\":\"b\",\"e\":[],\"o\":{}}\n{\"name\":\"c\",\"f\":1.0}")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.lines == [#"{"name":"A","n":1}"#, #"{"name":"B","e":[],"o":{}}"#, #"{"name":"C","f":1.0}"#])
        #expect(r.stderr.contains("setup ran") && r.stderr.contains("flush ran") && r.stderr.contains("teardown ran"))
    }

    @Test("figures or a trace that cannot be written are an error: exit 1, the reason on stderr, the output written")
    func unwritableFigures() async throws {
        let fifo = Binary.temp("figures-\(UUID().uuidString).fifo")
        mkfifo(fifo, 0o600)  // nobody reads it: it must not hold the exit
        for flag in ["--stats-json", "--trace"] {
            for (path, reason) in [("/dev/full", "No space left on device"), (fifo, "Broken pipe")] {
                let r = try await Binary.runOffPool(["run", "basic.yaml", flag, path], input: "{\"name\":\"a\"}\n", timeout: 20)
                #expect(r.status == 1, "\(flag) \(path): \(r.stderr)")
                #expect(r.stderr.contains("cannot write \(flag) \(path): \(reason)"), "\(r.stderr)")
                #expect(r.lines == [#"{"name":"A"}"#])
            }
        }
    }

    @Test("a failing record under fail: exit 1, the records before it written, teardown run, stats balanced")
    func failPolicy() async throws {
        let stats = Binary.temp("fail.json")
        let r = try await Binary.runOffPool(["run", "basic.yaml", "--stats-json", stats],
                               input: "{\"name\":\"a\"}\n{\"name\":2}\n{\"name\":\"c\"}\n")
        #expect(r.status == 1)
        #expect(r.lines == [#"{"name":"A"}"#])
        #expect(r.stderr.contains("plugin 'upper', record 2"), "\(r.stderr)")
        #expect(r.stderr.contains("upper.lua:4: name must be a string"), "\(r.stderr)")
        #expect(r.stderr.contains("teardown ran"))
        let s = try Binary.stats(stats)
        #expect(Binary.balanced(s), "\(s)")
        #expect((s["failed"] as? Int ?? 0) >= 1)
    }

    @Test("dead-letter and drop policies; a runaway plugin costs its timeout and the run completes")
    func deadLetterAndTimeout() async throws {
        let dir = Binary.temp("dl")
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let manifest = dir + "/skip.yaml"
        try? FileManager.default.removeItem(atPath: manifest)
        try FileManager.default.copyItem(atPath: Binary.fixtures + "/skip.yaml", toPath: manifest)
        try? FileManager.default.removeItem(atPath: dir + "/plugins")
        try FileManager.default.createSymbolicLink(atPath: dir + "/plugins", withDestinationPath: Binary.fixtures + "/plugins")
        let stats = dir + "/stats.json"
        let started = Date()
        let r = try await Binary.runOffPool(["run", manifest, "--stats-json", stats],
                               input: "{\"name\":\"a\"}\n{\"name\":[1]}\n{\"name\":\"s\",\"spin\":true}\n{\"name\":\"d\"}\n")
        let elapsed = Date().timeIntervalSince(started)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.lines == [#"{"name":"A"}"#, #"{"name":"D"}"#])
        let rejects = try String(contentsOfFile: dir + "/rejects.jsonl", encoding: .utf8)
        #expect(rejects.contains(#"{"record":{"name":[1]},"plugin":"upper","error":""#), "\(rejects)")
        #expect(rejects.contains(#""record_number":2}"#))
        let s = try Binary.stats(stats)
        #expect(Binary.balanced(s), "\(s)")
        #expect(s["dead_lettered"] as? Int == 1 && s["dropped"] as? Int == 1)
        let plugins = s["plugins"] as? [[String: Any]] ?? []
        #expect(plugins.last?["timeouts"] as? Int == 1, "\(plugins)")
        #expect(elapsed < 60, "took \(elapsed) s")  // a hang detector, not a speed claim
    }

    @Test("input errors follow on_input_error", arguments: [
        ("{\"a\":1", "unexpected end of input"),
        ("{\"a\":1} trailing", "unexpected text after the JSON value"),
        ("[1,2]", "not an object"),
        ("{\"a\":\"\u{1}\"}", "control character"),
        (String(repeating: "[", count: 600), "nesting deeper than 512"),
        ("{\"a\":NaN}", "NaN"),
    ])
    func inputErrors(_ line: String, _ expected: String) async throws {
        let input = "{\"name\":\"ok\"}\n" + line + "\n{\"name\":\"after\"}\n"
        let failed = try await Binary.runOffPool(["run", "basic.yaml"], input: input)
        #expect(failed.status == 1)
        #expect(failed.stderr.contains("input line 2: \(expected)") || failed.stderr.contains(expected), "\(failed.stderr)")
        #expect(failed.lines == [#"{"name":"OK"}"#])
        let dropped = try await Binary.runOffPool(["run", "basic.yaml", "--on-input-error", "drop"], input: input)
        #expect(dropped.status == 0)
        #expect(dropped.lines == [#"{"name":"OK"}"#, #"{"name":"AFTER"}"#])
        let dl = Binary.temp("input-dl.jsonl")
        let dead = try await Binary.runOffPool(["run", "basic.yaml", "--on-input-error", "dead-letter", "--dead-letter", dl], input: input)
        #expect(dead.status == 0)
        let text = try String(contentsOfFile: dl, encoding: .utf8)
        #expect(text.hasPrefix("{\"input\":"), "\(text)")
        #expect(text.contains("\"record_number\":2"))
    }

    @Test("progress shows on a terminal only")
    func progress() async throws {
        let quiet = try await Binary.runOffPool(["run", "basic.yaml"], input: "{\"name\":\"a\"}\n")
        #expect(!quiet.stderr.contains("records/s"))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", "(echo '{\"name\":\"a\"}'; sleep 1.5) | script -qc \"'\(Binary.path)' run basic.yaml >/dev/null\" /dev/null"]
        p.currentDirectoryURL = URL(fileURLWithPath: Binary.fixtures)
        let out = Pipe()
        p.standardOutput = out
        let o = Collector(out.fileHandleForReading)
        try p.run()
        p.waitUntilExit()
        #expect(o.text().contains("luapipe: 1 records"), "\(o.text())")
    }

    @Test("invalid UTF-8 in a line is an input error")
    func invalidUTF8() async throws {
        let dir = Binary.temp("utf8.jsonl")
        var bytes = Data("{\"name\":\"".utf8)
        bytes.append(contentsOf: [0xC3, 0x28])
        bytes.append(contentsOf: Data("\"}\n".utf8))
        try bytes.write(to: URL(fileURLWithPath: dir))
        let r = try await Binary.runOffPool(["run", "basic.yaml", "--input", dir])
        #expect(r.status == 1)
        #expect(r.stderr.contains("input line 1: invalid UTF-8"), "\(r.stderr)")
    }

    @Test("stdout closed early (| head -1) ends a large run at once and quietly")
    func closedStdout() async throws {
        let big = Binary.temp("big.jsonl")
        let line = "{\"name\":\"x\",\"payload\":\"" + String(repeating: "y", count: 100) + "\"}\n"
        try String(repeating: line, count: 300_000).write(toFile: big, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", "'\(Binary.path)' run basic.yaml --input '\(big)' | head -1; echo \"status=${PIPESTATUS[0]}\""]
        p.currentDirectoryURL = URL(fileURLWithPath: Binary.fixtures)
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let o = Collector(out.fileHandleForReading), e = Collector(err.fileHandleForReading)
        try p.run()
        p.waitUntilExit()
        let text = o.text()
        #expect(text.hasPrefix("{\"name\":\"X\""), "\(text)")
        #expect(text.contains("status=0"), "\(text)")
        #expect(!e.text().contains("error"), "\(e.text())")
    }

    /// With one worker, both entries of basic.yaml run as one stage (fused).
    @Test("a record from a pipe that stays open is written before the input ends", arguments: ["1", "2"])
    func streaming(_ workers: String) async throws {
        let (p, input, output, _) = try Binary.start(["run", "basic.yaml", "--workers", workers])
        input.fileHandleForWriting.write(Data("{\"name\":\"first\"}\n".utf8))
        var got = Data()
        let deadline = Date().addingTimeInterval(10)
        var fds = pollfd(fd: output.fileHandleForReading.fileDescriptor, events: Int16(POLLIN), revents: 0)
        while !got.contains(10), Date() < deadline {
            if poll(&fds, 1, 100) > 0 { got.append(output.fileHandleForReading.availableData) }
        }
        #expect(String(decoding: got, as: UTF8.self) == "{\"name\":\"FIRST\"}\n")
        try input.fileHandleForWriting.close()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
    }

    @Test("SIGINT and SIGTERM: records in flight finish, teardown runs, stats are written", arguments: [(SIGINT, Int32(130)), (SIGTERM, Int32(143))] as [(Int32, Int32)])
    func signals(_ sig: Int32, _ code: Int32) async throws {
        let stats = Binary.temp("signal-\(sig).json")
        let (p, input, output, errPipe) = try Binary.start(["run", "basic.yaml", "--stats-json", stats])
        let err = Collector(errPipe.fileHandleForReading)
        input.fileHandleForWriting.write(Data("{\"name\":\"a\"}\n{\"name\":\"b\"}\n".utf8))
        var got = Data()
        let deadline = Date().addingTimeInterval(10)
        while got.filter({ $0 == 10 }).count < 2, Date() < deadline {
            got.append(output.fileHandleForReading.availableData)
        }
        kill(p.processIdentifier, sig)
        p.waitUntilExit()
        #expect(p.terminationStatus == code)
        #expect(err.text().contains("teardown ran"))
        let s = try Binary.stats(stats)
        #expect(Binary.balanced(s), "\(s)")
        #expect(s["records_out"] as? Int == 2)
    }
}
