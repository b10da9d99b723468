import Foundation
import Testing

/// Runs the built `luapipe` binary (LUAPIPE_BIN, or the debug build next to the tests).
enum Binary {
    static var path: String {
        if let p = ProcessInfo.processInfo.environment["LUAPIPE_BIN"], !p.isEmpty { return p }
        return packageRoot + "/.build/debug/luapipe"
    }

    static var packageRoot: String {
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    static var fixtures: String { packageRoot + "/Tests/luapipeTests/Fixtures" }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var lines: [String] { stdout.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }
    }

    /// Runs luapipe (or `executable`) with `args`, feeding `input` on stdin; kills it after `timeout`.
    /// At most two luapipe runs at a time, the cores of the machine the suite is written for:
    /// the tests run in parallel, and dozens of luapipe processes at once would starve the
    /// timing-sensitive ones (a call's timeout is wall time). Other programs (`swift build`
    /// in the scaffold test) do not take a slot.
    static let slots = DispatchSemaphore(value: 2)

    /// A run that exits before reading its input (a usage error) closes the pipe the test
    /// writes the input to: that must be an error for the write, not the test process's end.
    static let ignoreSIGPIPE: Void = { signal(SIGPIPE, SIG_IGN) }()

    static func run(_ args: [String], input: String = "", timeout: TimeInterval = 60, cwd: String? = nil,
                    executable: String? = nil) throws -> Result {
        if executable == nil { slots.wait() }
        defer { if executable == nil { slots.signal() } }
        let (p, inPipe, outPipe, errPipe) = try start(args, cwd: cwd, executable: executable)
        let writer = Thread {
            inPipe.fileHandleForWriting.write(input.data(using: .utf8)!)
            try? inPipe.fileHandleForWriting.close()
        }
        writer.start()
        let out = Collector(outPipe.fileHandleForReading), err = Collector(errPipe.fileHandleForReading)
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning {
            p.terminate()
            Issue.record("\(executable ?? "luapipe") \(args) did not end within \(timeout) s")
        }
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: out.text(), stderr: err.text())
    }

    /// `run` on a thread of its own, for long runs: a test that waits minutes must not hold
    /// one of the cooperative pool's threads, which the other tests need.
    static func runOffPool(_ args: [String], input: String = "", timeout: TimeInterval = 60, cwd: String? = nil,
                           executable: String? = nil) async throws -> Result {
        try await withCheckedThrowingContinuation { c in
            Thread { c.resume(with: Swift.Result { try run(args, input: input, timeout: timeout, cwd: cwd, executable: executable) }) }.start()
        }
    }

    /// Any blocking work (a child process, a shell) on a thread of its own, for the same reason.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { c in
            Thread {
                slots.wait()
                defer { slots.signal() }
                c.resume(with: Swift.Result { try body() })
            }.start()
        }
    }

    /// Starts luapipe and returns the process and its pipes, for streaming and signal tests.
    static func start(_ args: [String], cwd: String? = nil, executable: String? = nil) throws -> (Process, Pipe, Pipe, Pipe) {
        _ = ignoreSIGPIPE
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable ?? path)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: cwd ?? fixtures)
        let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
        p.standardInput = inPipe
        p.standardOutput = outPipe
        p.standardError = errPipe
        try p.run()
        return (p, inPipe, outPipe, errPipe)
    }

    static func temp(_ name: String) -> String {
        let dir = NSTemporaryDirectory() + "luapipe-tests-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir + "/" + name
    }

    /// `n` input lines {"id":1} ... {"id":n}, each with `extra` after the id.
    static func records(_ n: Int, _ extra: String = "") -> String {
        (1...n).map { "{\"id\":\($0)\(extra)}" }.joined(separator: "\n") + "\n"
    }

    /// A lookup table of `n` tiny rows {"k":0,"v":1} ... (about 19 bytes a row).
    static func tinyRows(_ n: Int) -> String {
        (0..<n).map { "{\"k\":\($0),\"v\":1}" }.joined(separator: "\n") + "\n"
    }

    static func stats(_ path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    /// The accounting identity of docs/reference.md.
    static func balanced(_ s: [String: Any]) -> Bool {
        func n(_ k: String) -> Int { (s[k] as? NSNumber)?.intValue ?? -1 }
        return n("records_in") + n("emitted") == n("records_out") + n("dropped") + n("dead_lettered") + n("failed") + n("abandoned")
    }
}

/// Reads a pipe to its end on a background thread.
final class Collector: @unchecked Sendable {
    private var data = Data()
    private let lock = NSLock()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread {
            let d = handle.readDataToEndOfFile()
            self.lock.lock()
            self.data = d
            self.lock.unlock()
            self.done.signal()
        }.start()
    }

    /// What the pipe gave, once it ended; after 120 s without an end, what it gave so far
    /// is not known and the text says so (a test fails instead of hanging the run).
    func text() -> String {
        if done.wait(timeout: .now() + 120) == .timedOut { return "(no end of output after 120 s)" }
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}
