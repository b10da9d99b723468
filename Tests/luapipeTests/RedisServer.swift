import Foundation
import Testing

/// A redis-server of the test's own on a free loopback port, and redis-cli to look at it.
/// (scripts/test.sh installs redis-server through `need_redis`.)
final class RedisServer: @unchecked Sendable {
    // Safe because a test drives its server from one task at a time.
    let port: Int
    let dir: String
    let appendOnly: Bool
    private var process: Process?

    init(appendOnly: Bool = false, port: Int? = nil) throws {
        self.port = port ?? TestServer.closedPort()
        dir = Binary.temp("redis-\(self.port)")
        self.appendOnly = appendOnly
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try start()
    }

    deinit { stop() }

    func url(_ stream: String, _ query: String = "") -> String {
        "redis://127.0.0.1:\(port)/\(stream)" + (query.isEmpty ? "" : "?" + query)
    }

    /// Starts (or starts again, on the same port and data directory) and waits for PONG.
    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["redis-server", "--port", "\(port)", "--bind", "127.0.0.1", "--save", "",
                       "--appendonly", appendOnly ? "yes" : "no", "--appendfsync", "always",
                       "--dir", dir, "--daemonize", "no"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try spawnOffPool { try p.run() }
        process = p
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if (try? cli(["PING"])) == "PONG" { return }
            usleep(50_000)
        }
        throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "redis-server on port \(port) did not answer"])
    }

    /// kill -9: what it had not written to its append-only file is gone.
    func kill9() {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGKILL)
        kill(p.processIdentifier, SIGCONT)  // a paused one too
        p.waitUntilExit()
        process = nil
    }

    func stop() { kill9() }

    /// SIGSTOP / SIGCONT: a server that holds its connections and answers nothing.
    func pause() { if let p = process { kill(p.processIdentifier, SIGSTOP) } }
    func resume() { if let p = process { kill(p.processIdentifier, SIGCONT) } }

    /// redis-cli --raw: one line per reply element.
    @discardableResult
    func cli(_ args: [String], stdin: Data? = nil) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["redis-cli", "-p", "\(port)", "--raw"] + args
        let out = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardInput = input
        p.standardError = FileHandle.nullDevice
        try p.run()
        let collector = Collector(out.fileHandleForReading)
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try? input.fileHandleForWriting.close()
        p.waitUntilExit()
        return collector.text().trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// XADDs one entry per JSON text in field `json` (or the given fields), pipelined.
    func fill(_ stream: String, _ entries: [[(String, String)]]) throws {
        var resp = Data()
        func bulk(_ s: String) { let b = Data(s.utf8); resp.append(Data("$\(b.count)\r\n".utf8)); resp.append(b); resp.append(Data("\r\n".utf8)) }
        for fields in entries {
            resp.append(Data("*\(3 + fields.count * 2)\r\n".utf8))
            bulk("XADD"); bulk(stream); bulk("*")
            for (k, v) in fields { bulk(k); bulk(v) }
        }
        try cli(["--pipe"], stdin: resp)
    }

    func fill(_ stream: String, json: [String]) throws {
        try fill(stream, json.map { [("json", $0)] })
    }

    func length(_ stream: String) -> Int { Int((try? cli(["XLEN", stream])) ?? "") ?? -1 }

    /// The ids of a stream, in order.
    func ids(_ stream: String) throws -> [String] {
        try entries(stream).map(\.id)
    }

    /// A stream's entries with their fields (this suite's field names only).
    func entries(_ stream: String) throws -> [(id: String, fields: [String: String])] {
        let lines = try cli(["XRANGE", stream, "-", "+"]).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let names: Set<String> = ["json", "source_id", "source_index", "other"]
        var result: [(id: String, fields: [String: String])] = []
        var i = 0
        while i < lines.count {
            let id = lines[i]
            i += 1
            if id.isEmpty { continue }
            var fields: [String: String] = [:]
            while i + 1 < lines.count, names.contains(lines[i]) {
                fields[lines[i]] = lines[i + 1]
                i += 2
            }
            result.append((id, fields))
        }
        return result
    }

    /// How many entries the group has delivered and not seen acknowledged.
    func pending(_ stream: String, _ group: String) -> Int {
        Int((try? cli(["XPENDING", stream, group]))?.split(separator: "\n").first.map(String.init) ?? "") ?? -1
    }

    /// The ids pending for one consumer.
    func pendingIDs(_ stream: String, _ group: String, _ consumer: String) throws -> Set<String> {
        let lines = try cli(["XPENDING", stream, group, "-", "+", "1000000", consumer]).split(separator: "\n").map(String.init)
        return Set(stride(from: 0, to: lines.count, by: 4).map { lines[$0] })
    }
}

/// A luapipe process running in the background (a stream consumer), its output collected.
final class Background: @unchecked Sendable {
    // Safe because the fields are set in init and only read after.
    let process: Process
    private let out: Collector, err: Collector

    init(_ args: [String]) throws {
        let (p, inPipe, outPipe, errPipe) = try spawnOffPool { try Binary.start(args) }
        try? inPipe.fileHandleForWriting.close()
        process = p
        out = Collector(outPipe.fileHandleForReading)
        err = Collector(errPipe.fileHandleForReading)
    }

    func signal(_ s: Int32) { kill(process.processIdentifier, s) }

    /// Waits for the end (killing it after `timeout`); returns its status and stderr.
    func wait(timeout: TimeInterval = 120) -> (status: Int32, stderr: String) {
        (awaitEnd(process, timeout: timeout), err.text())
    }
}

/// Waits for a luapipe started in the background to end, terminating it (and recording an
/// issue) after `timeout`; its exit status.
func awaitEnd(_ process: Process, timeout: TimeInterval) -> Int32 {
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(20_000) }
    if process.isRunning {
        Issue.record("luapipe \(process.arguments ?? []) did not end within \(timeout) s")
        process.terminate()
    }
    process.waitUntilExit()
    return process.terminationStatus
}

/// Runs `body` (which starts a child process) on a Foundation thread and waits for it. The
/// cooperative pool's threads block every signal and a child inherits that mask: started
/// from one, luapipe would never see the SIGTERM a test sends it.
func spawnOffPool<T>(_ body: @escaping () throws -> T) throws -> T {
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var result: Result<T, any Error>?
    nonisolated(unsafe) let body = body
    Thread {
        result = Result { try body() }
        done.signal()
    }.start()
    done.wait()
    return try result!.get()
}

/// Polls `condition` every 20 ms for up to `timeout` seconds; true once it holds.
func eventually(_ timeout: TimeInterval = 60, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return false
}
