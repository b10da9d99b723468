import Foundation
import Testing

@Suite("luapipe run --watch, end to end")
struct WatchTests {
    static func plugin(_ version: String) -> String {
        "local p = { name = 'live', version = '1.0.0', api = 1 }\n"
            + "function p.setup(config, ctx) ctx.log.info('setup \(version)') end\n"
            + "function p.process(r) r.v = '\(version)' end\n"
            + "function p.teardown(ctx) ctx.log.info('teardown \(version)') end\n"
            + "return p\n"
    }

    /// Sends one record and waits for its output line.
    static func roundTrip(_ input: Pipe, _ output: FileHandle, _ n: Int) -> String {
        input.fileHandleForWriting.write(Data("{\"n\":\(n)}\n".utf8))
        var got = Data()
        let deadline = Date().addingTimeInterval(10)
        while !got.contains(10), Date() < deadline { got.append(output.availableData) }
        return String(decoding: got, as: UTF8.self).trimmingCharacters(in: .newlines)
    }

    @Test("an edited plugin is reloaded between records; a broken edit keeps the running version and says why")
    func watch() async throws {
        let dir = Binary.temp("watch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: dir + "/plugins", withIntermediateDirectories: true)
        try Self.plugin("one").write(toFile: dir + "/plugins/live.lua", atomically: false, encoding: .utf8)
        try "api: 1\nplugins:\n  - use: live\n".write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let (p, input, output, errPipe) = try Binary.start(["run", dir + "/p.yaml", "--watch"])
        let err = Collector(errPipe.fileHandleForReading)
        #expect(Self.roundTrip(input, output.fileHandleForReading, 1) == #"{"n":1,"v":"one"}"#)

        try Self.plugin("two").write(toFile: dir + "/plugins/live.lua", atomically: false, encoding: .utf8)
        // The watcher polls every 250 ms: records go on with the old code until the new is in.
        var n = 2
        var last = ""
        let deadline = Date().addingTimeInterval(20)
        repeat {
            usleep(200_000)
            last = Self.roundTrip(input, output.fileHandleForReading, n)
            n += 1
        } while last != "{\"n\":\(n - 1),\"v\":\"two\"}" && Date() < deadline
        #expect(last.hasSuffix(#""v":"two"}"#), "\(last)")

        try "local p = { name = 'live', version = '1.0.0', api = 1 \n function p.process(r) end return p"
            .write(toFile: dir + "/plugins/live.lua", atomically: false, encoding: .utf8)
        usleep(1_500_000)  // several polls: the reload is tried and fails
        #expect(Self.roundTrip(input, output.fileHandleForReading, 100) == #"{"n":100,"v":"two"}"#)

        try input.fileHandleForWriting.close()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let log = err.text()
        #expect(log.contains("setup two") && log.contains("teardown one"), "\(log)")
        #expect(log.contains("reload of") && log.contains("failed, the running version stays"), "\(log)")
        #expect(log.contains("live.lua:2:"), "the syntax error names file:line: \(log)")
        #expect(log.contains("teardown two"))
    }

    /// What one streamed run of `napper` gave: its exit, its output lines, its log, its figures.
    struct Streamed: Sendable {
        var status: Int32
        var hung: Bool
        var lines: [String]
        var log: String
        var stats: [String: Int]
        var balanced: Bool
    }

    /// Feeds 200 records 20 ms apart to `napper` (it waits up to 60 ms on each) with --watch and
    /// --batch-size 4, rewriting its file as `edits` says (before which record, with what text),
    /// then closes stdin; a run still going 30 s later is ended by SIGTERM and counts as hung.
    static func stream(_ edits: [Int: @Sendable (String) -> String]) throws -> Streamed {
        let dir = Binary.temp("watch-wait-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: dir + "/plugins", withIntermediateDirectories: true)
        let original = try String(contentsOfFile: Binary.fixtures + "/plugins/napper.lua", encoding: .utf8)
        let file = dir + "/plugins/napper.lua"
        try original.write(toFile: file, atomically: false, encoding: .utf8)
        try "api: 1\nplugins:\n  - use: napper\n    timeout_ms: 1000\n"
            .write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let (p, input, output, errPipe) = try Binary.start(["run", dir + "/p.yaml", "--watch", "--batch-size", "4",
                                                            "--stats-json", dir + "/s.json"])
        let out = Collector(output.fileHandleForReading), err = Collector(errPipe.fileHandleForReading)
        for n in 0..<200 {
            if let edit = edits[n] { try edit(original).write(toFile: file, atomically: false, encoding: .utf8) }
            input.fileHandleForWriting.write(Data("{\"n\":\(n)}\n".utf8))
            usleep(20_000)
        }
        try input.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(30)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        let hung = p.isRunning
        if hung { p.terminate() }
        p.waitUntilExit()
        let figures = (try? Binary.stats(dir + "/s.json")) ?? [:]
        return Streamed(status: p.terminationStatus, hung: hung,
                        lines: out.text().split(separator: "\n").map(String.init), log: err.text(),
                        stats: figures.compactMapValues { ($0 as? NSNumber)?.intValue }, balanced: Binary.balanced(figures))
    }

    static func version(_ v: String) -> @Sendable (String) -> String {
        { $0.replacingOccurrences(of: #"local version = "v1""#, with: "local version = \"\(v)\"") }
    }

    /// A reload used to drop the calls waiting in the old instance: their answers found no call
    /// to resume, the batch never ended and the run stopped for good, no timeout firing.
    @Test("a plugin that waits is reloaded while records are in flight: every record out, in order, the version switches once",
          arguments: [false, true])
    func reloadWhileWaiting(failedFirst: Bool) async throws {
        let edits: [Int: @Sendable (String) -> String] = failedFirst
            ? [40: { $0 + "\nthis is not lua (((\n" }, 100: Self.version("v2")]
            : [60: Self.version("v2")]
        let r = try await Binary.offPool { try Self.stream(edits) }
        #expect(!r.hung, "the run stopped for good after the reload; figures \(r.stats), log: \(r.log)")
        #expect(r.status == 0, "\(r.log)")
        let records = r.lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let numbers = records.compactMap { ($0["n"] as? NSNumber)?.intValue }
        #expect(numbers == Array(0..<200), "\(r.lines.count) lines out")
        let versions = records.compactMap { $0["v"] as? String }
        let switched = versions.firstIndex(of: "v2") ?? versions.count
        #expect(versions.count == 200 && switched > 30 && switched < 190, "\(versions)")
        #expect(versions[..<switched].allSatisfy { $0 == "v1" } && versions[switched...].allSatisfy { $0 == "v2" },
                "one switch, from v1 to v2: \(versions)")
        #expect(r.balanced, "\(r.stats)")
        #expect(r.stats["records_in"] == 200 && r.stats["records_out"] == 200, "\(r.stats)")
        #expect(r.stats["failed"] == 0 && r.stats["abandoned"] == 0, "\(r.stats)")
        #expect(r.log.contains("reloaded "), "\(r.log)")
        if failedFirst {
            #expect(r.log.contains("failed, the running version stays"), "\(r.log)")
        }
    }
}
