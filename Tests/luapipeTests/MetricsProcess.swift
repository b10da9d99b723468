import Foundation
import Testing

/// A luapipe run with `--metrics`, started in the background: its stdin kept open for the
/// test to feed, its stderr read as it comes (for the address it prints), scraped with curl.
/// (scripts/test.sh installs curl through `need_curl`.)
final class MetricsProcess: @unchecked Sendable {
    // Safe because `stderr` is only touched with `lock` held; the rest is set in init.
    let process: Process
    let input: FileHandle
    private let lock = NSLock()
    private var stderr = Data()
    private let stderrDone = DispatchSemaphore(value: 0)
    private let out: Collector

    init(_ args: [String]) throws {
        let (p, inPipe, outPipe, errPipe) = try spawnOffPool { try Binary.start(args) }
        process = p
        input = inPipe.fileHandleForWriting
        out = Collector(outPipe.fileHandleForReading)
        let handle = errPipe.fileHandleForReading
        Thread { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                lock.lock()
                stderr.append(chunk)
                lock.unlock()
            }
            stderrDone.signal()
        }.start()
    }

    /// What the run wrote on stderr so far.
    var stderrText: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: stderr, as: UTF8.self)
    }

    /// The URL of the line `luapipe: metrics on URL`, once it is there.
    /// The address the run printed, waited for on a thread of its own: polling on the
    /// cooperative pool starved the in-process suites (40 s for a 1 s test in the full run).
    func url(timeout: TimeInterval = 60) async -> String? {
        await withCheckedContinuation { c in
            Thread { c.resume(returning: self.waitForURL(timeout)) }.start()
        }
    }

    private func waitForURL(_ timeout: TimeInterval) -> String? {
        var found: String?
        _ = eventually(timeout) {
            guard let line = stderrText.split(separator: "\n").first(where: { $0.hasPrefix("luapipe: metrics on ") }) else { return false }
            found = String(line.dropFirst("luapipe: metrics on ".count))
            return true
        }
        return found
    }

    func feed(_ text: String) { input.write(Data(text.utf8)) }

    func closeInput() { try? input.close() }

    func signal(_ s: Int32) { kill(process.processIdentifier, s) }

    /// Waits for the end (killing it after `timeout`): its status, stdout and stderr.
    func wait(timeout: TimeInterval = 60) -> (status: Int32, stdout: String, stderr: String) {
        let status = awaitEnd(process, timeout: timeout)
        _ = stderrDone.wait(timeout: .now() + 10)
        return (status, out.text(), stderrText)
    }
}

/// One GET with curl: its exit status (0, or 7 when nothing listens) and what it printed.
func curl(_ url: String, _ extra: [String] = []) throws -> (status: Int32, body: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["curl", "-s", "--max-time", "10"] + extra + [url]
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    let collector = Collector(out.fileHandleForReading)
    p.waitUntilExit()
    return (p.terminationStatus, collector.text())
}

/// The samples of a Prometheus text exposition, by series (`name{labels}` as written).
struct Scrape {
    var samples: [String: Double] = [:]
    var types: [String: String] = [:]

    init(_ text: String) {
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                if parts.count == 4 { types[String(parts[2])] = String(parts[3]) }
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = v
        }
    }

    subscript(_ series: String) -> Double? { samples[series] }

    /// The bucket counts of one histogram series, in the order of their bounds (+Inf last).
    func buckets(_ name: String, _ labels: String) -> [Double] {
        let prefix = "\(name)_bucket{\(labels),le=\""
        return samples.filter { $0.key.hasPrefix(prefix) }
            .map { (le: Double($0.key.dropFirst(prefix.count).dropLast(2)) ?? .infinity, n: $0.value) }
            .sorted { $0.le < $1.le }.map(\.n)
    }
}
