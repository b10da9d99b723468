import Foundation
import LuaPipe
import Logging

/// Everything luapipe writes to stderr (log lines, plugins' `print`, errors, figures) goes
/// through one thread of its own, so a stderr nobody reads (a full pipe) blocks that thread
/// only: plugins' calls, the shutdown and the exit go on. At most `capacity` bytes wait; past
/// that, lines are dropped and counted, and the count is reported at exit if stderr takes it
/// (docs/reference.md, "The command line").
final class StderrWriter: @unchecked Sendable {
    // Safe because every field is read and written under `condition`.
    static let shared = StderrWriter()
    static let capacity = 1 << 20

    private let condition = NSCondition()
    private var pending: [[UInt8]] = []
    private var pendingBytes = 0
    private var writing = false
    private var dropped = 0
    private var started = false

    func write(_ bytes: [UInt8]) {
        condition.lock()
        defer { condition.unlock() }
        guard pendingBytes + bytes.count <= Self.capacity else {
            dropped += 1
            return
        }
        pending.append(bytes)
        pendingBytes += bytes.count
        if !started {
            started = true
            let t = Thread { [self] in loop() }
            t.name = "luapipe-stderr"
            t.start()
        }
        condition.broadcast()
    }

    private func loop() {
        while true {
            condition.lock()
            while pending.isEmpty { condition.wait() }
            let batch = pending
            pending = []
            writing = true
            condition.unlock()
            for b in batch { _ = try? FileIO.writeAll(2, b, what: "stderr") }
            condition.lock()
            pendingBytes -= batch.reduce(0) { $0 + $1.count }
            writing = false
            condition.broadcast()
            condition.unlock()
        }
    }

    /// Waits until everything queued is written, or `limit` has passed (stderr not read):
    /// called before the process exits.
    func drain(within limit: TimeInterval = 0.2) {
        let until = Date(timeIntervalSinceNow: limit)
        condition.lock()
        while !pending.isEmpty || writing {
            if !condition.wait(until: until) { break }
        }
        let (lost, stuck) = (dropped, !pending.isEmpty || writing)
        dropped = 0
        condition.unlock()
        if lost > 0, !stuck {
            _ = try? FileIO.writeAll(2, Array("luapipe: \(lost) line(s) for stderr were dropped: it was not read fast enough\n".utf8), what: "stderr")
        }
    }
}

/// swift-log's stream, onto `StderrWriter`.
struct StderrStream: TextOutputStream, Sendable {
    mutating func write(_ string: String) {
        StderrWriter.shared.write(Array(string.utf8))
    }
}

extension LuaPipeCLI {
    /// Log lines go to stderr through `StderrWriter`, in swift-log's stream format.
    static func bootstrapLogging() {
        LoggingSystem.bootstrap { StreamLogHandler(label: $0, stream: StderrStream()) }
    }
}
