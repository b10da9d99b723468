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
}
