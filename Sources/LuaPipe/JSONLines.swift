import LuaPipeCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Reads JSON Lines from a file descriptor (docs/reference.md): blank lines ignored, CRLF accepted, a
/// last line without a newline counts. Returns what has arrived without waiting for a batch
/// to fill, so a record from a slow source (a pipe, `tail -f`) goes through at once.
public final class JSONLinesSource: RecordSource, @unchecked Sendable {
    // Safe because the pipeline's reader task is the only caller, one call at a time; the
    // blocking read runs on `worker`.
    public static let maxLine = 64 << 20
    /// The most records one batch holds (`--batch-size`).
    public let batchSize: Int

    private let fd: Int32
    private let worker: WorkerThread
    private let closeOnEnd: Bool
    private var buffer: [UInt8] = []
    private var start = 0
    /// Where the search for the next newline resumes: the bytes between `start` and here
    /// hold none (so a long line is scanned once, not once per chunk read).
    private var scanned = 0
    /// Inside a line longer than `maxLine`: its bytes are dropped until its newline.
    private var skipping = false
    private var eof = false
    private var line = 0
    private var number = 0
    private let progress = Atomic<Int>(0)

    /// Records read so far (any thread may ask: the progress display does).
    public var recordsRead: Int { progress.load(ordering: .relaxed) }

    public init(fd: Int32, worker: WorkerThread, closeOnEnd: Bool = false, batchSize: Int = 1024) {
        self.batchSize = max(1, batchSize)
        self.fd = fd
        self.worker = worker
        self.closeOnEnd = closeOnEnd
    }

    deinit { if closeOnEnd { close(fd) } }

    public func nextBatch(stop: StopFlag) async throws -> [InputEvent]? {
        while true {
            var events: [InputEvent] = []
            if skipping { skipRest() }
            if !skipping { takeLines(into: &events) }
            if !events.isEmpty { return events }
            if eof {
                if start < buffer.count {  // the last line, without a newline
                    let rest = Array(buffer[start...])
                    start = buffer.count
                    line += 1
                    if let e = event(rest[...]) { return [e] }
                }
                return nil
            }
            if stop.isSet { return nil }
            let chunk = try await readChunk(stop: stop)
            if start > 0 && start >= buffer.count / 2 {
                buffer.removeFirst(start)
                scanned = max(0, scanned - start)
                start = 0
            }
            if let chunk {
                if chunk.isEmpty { eof = true } else { buffer.append(contentsOf: chunk) }
            }
            if !skipping, buffer.count - start > Self.maxLine, !buffer[max(start, scanned)...].contains(10) {
                // A line past the limit, its end not in sight: it is an input error (under
                // on_input_error, like any other), and its bytes are dropped as they come.
                line += 1
                number += 1
                progress.store(number, ordering: .relaxed)
                let head = Array(buffer[start..<(start + 1024)])
                skipping = true
                start = buffer.count
                scanned = start
                return [Self.tooLong(line, number, head)]
            }
        }
    }

    static func tooLong(_ line: Int, _ number: Int, _ head: [UInt8]) -> InputEvent {
        .invalid(line: line, number: number, text: head,
                 error: "longer than \(maxLine >> 20) MiB (the input holds its first KiB)")
    }

    /// Drops the rest of an over-long line, up to and with its newline.
    private func skipRest() {
        if let nl = buffer[start...].firstIndex(of: 10) {
            start = nl + 1
            skipping = false
        } else {
            start = buffer.count
        }
        scanned = start
    }

    /// Up to 256 KiB, or [] at end of input, or nil when nothing arrived within 100 ms.
    private func readChunk(stop: StopFlag) async throws -> [UInt8]? {
        let fd = self.fd
        return try await worker.run { () throws -> [UInt8]? in
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, 100)
            if ready == 0 { return nil }
            var buf = [UInt8](repeating: 0, count: 1 << 18)
            while true {
                let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw PipelineError(.io, "cannot read input: \(String(cString: strerror(errno)))")
                }
                return Array(buf[0..<n])
            }
        }
    }

    private func takeLines(into events: inout [InputEvent]) {
        buffer.withUnsafeBufferPointer { b in
            while events.count < batchSize, start < b.count {
                let from = max(start, scanned)
                guard let nl = memchr(b.baseAddress! + from, 10, b.count - from) else {
                    scanned = b.count
                    return
                }
                let end = b.baseAddress!.distance(to: nl.assumingMemoryBound(to: UInt8.self))
                let lineBytes = UnsafeBufferPointer(rebasing: b[start..<end])
                line += 1
                if end - start > Self.maxLine {  // the whole line is in: still too long
                    number += 1
                    events.append(Self.tooLong(line, number, Array(lineBytes.prefix(1024))))
                } else if let e = event(lineBytes) {
                    events.append(e)
                }
                start = end + 1
            }
        }
    }

    private func event(_ raw: ArraySlice<UInt8>) -> InputEvent? {
        raw.withUnsafeBufferPointer { event($0) }
    }

    private func event(_ raw: UnsafeBufferPointer<UInt8>) -> InputEvent? {
        var bytes = raw
        if let last = bytes.last, last == 13 { bytes = UnsafeBufferPointer(rebasing: bytes.dropLast()) }
        if bytes.allSatisfy({ $0 == 32 || $0 == 9 }) { return nil }  // blank
        number += 1
        progress.store(number, ordering: .relaxed)
        do {
            return .record(Item(number: number, tape: try JSONReader.parseRecord(bytes)))
        } catch {
            return .invalid(line: line, number: number, text: Array(bytes), error: "\(error)")
        }
    }
}

/// Writes records as JSON Lines to a file descriptor. Encoding runs in the calling task;
/// the blocking write on `worker`.
public final class JSONLinesSink: RecordSink {
    private let fd: Int32
    private let worker: WorkerThread
    private let closeOnEnd: Bool
    private let name: String

    public init(fd: Int32, worker: WorkerThread, name: String, closeOnEnd: Bool = false) {
        self.fd = fd
        self.worker = worker
        self.name = name
        self.closeOnEnd = closeOnEnd
    }

    /// Encodes and writes in pieces of about a MiB, so a batch of large records is never held
    /// twice (as records and as one buffer of their text). When a write fails part-way, the
    /// records whose lines went out whole count as written (`PartialWrite`).
    public func write(_ items: [Item]) async throws {
        var out: [UInt8] = []
        out.reserveCapacity(min(items.count * 200, Self.piece))
        var ends: [Int] = []  // where each record's line ends in `out`
        var written = 0       // records of `items` before this piece
        for item in items {
            item.writeJSON(to: &out)
            out.append(10)
            ends.append(out.count)
            if out.count >= Self.piece {
                try await flush(out, ends, &written)
                out.removeAll(keepingCapacity: true)
                ends.removeAll(keepingCapacity: true)
            }
        }
        if !out.isEmpty { try await flush(out, ends, &written) }
    }

    static let piece = 1 << 20

    private func flush(_ bytes: [UInt8], _ ends: [Int], _ written: inout Int) async throws {
        let (fd, name) = (self.fd, self.name)
        current.withLock { $0 = (written, ends) }
        out.store(0, ordering: .relaxed)
        defer { current.withLock { $0 = (0, []) } }
        let (n, error) = await worker.run { [self] in
            FileIO.writeSome(fd, bytes, what: name) { self.out.store($0, ordering: .relaxed) }
        }
        if let error {
            throw PartialWrite(written: written + ends.prefix { $0 <= n }.count, error: error)
        }
        written += ends.count
    }

    /// The piece being written: records of the batch before it, and where each of its lines
    /// ends; `out`: its bytes out so far. A forced shutdown with this write stuck counted the
    /// lines that reached a pipe nobody read as abandoned (fifth blind round).
    private let current = Mutex<(before: Int, ends: [Int])>((0, []))
    private let out = Atomic<Int>(0)

    public var wholeInProgress: Int {
        let n = out.load(ordering: .relaxed)
        return current.withLock { c in c.ends.isEmpty ? 0 : c.before + c.ends.prefix { $0 <= n }.count }
    }

    public func close() async throws {
        let (fd, closeOnEnd) = (self.fd, self.closeOnEnd)
        await worker.run { if closeOnEnd { _ = Glibc.close(fd) } }
    }
}

/// The dead-letter file: one JSON envelope per line, created (emptied) when the run starts.
public final class DeadLetterFile: DeadLetterSink {
    private let fd: Int32
    private let worker: WorkerThread
    public let path: String

    public init(path: String, worker: WorkerThread) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw PipelineError(.io, "cannot open the dead-letter file \(path): \(String(cString: strerror(errno)))")
        }
        self.fd = fd
        self.worker = worker
        self.path = path
    }

    public func write(_ envelope: Record) async throws {
        var out: [UInt8] = []
        JSONWriter.write(Tape(envelope), to: &out)
        out.append(10)
        let (fd, path, bytes) = (self.fd, self.path, out)
        try await worker.run { try FileIO.writeAll(fd, bytes, what: path) }
    }

    public func close() async throws {
        let fd = self.fd
        await worker.run { _ = Glibc.close(fd) }
    }
}
