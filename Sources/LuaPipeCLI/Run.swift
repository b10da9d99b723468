import ArgumentParser
import Synchronization
import LuaPipe
import LuaPipeCore
import LuaPipeHTTP
import LuaPipeRedis

#if canImport(Glibc)
import Glibc
#endif

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a pipeline over JSON Lines.")

    @Argument(help: "The pipeline manifest (YAML or JSON).") var manifest: String
    @Option(help: "Input file, - for stdin, or redis://HOST:PORT/STREAM?group=G&consumer=C (a stream).")
    var input: String = "-"
    @Option(help: "Output file, - for stdout, or redis://HOST:PORT/STREAM[?maxlen=N] (a stream).")
    var output: String = "-"
    @Option(help: "Worker threads for Lua and synchronous Swift plugins (1 to 256).") var workers: Int = 2
    @Option(name: .customLong("batch-size"), help: "The most records one batch holds (1 to 65,536).")
    var batchSize: Int = 1024
    @Option(name: .customLong("host-memory-mb"), help: "What records in flight may hold on the host, in MiB (16 to 1,048,576).")
    var hostMemoryMb: Int = 512
    @Option(name: .customLong("dead-letter"), help: "Where records that fail under dead-letter go, a file or redis://HOST:PORT/STREAM (overrides the manifest).")
    var deadLetter: String?
    @Option(name: .customLong("on-input-error"), help: "fail, drop or dead-letter: what to do with lines that are not records.")
    var onInputError: String?
    @Flag(help: "Print a per-plugin table on stderr at the end.") var stats = false
    @Option(name: .customLong("stats-json"), help: "Write the run's figures as JSON to this file.") var statsJSON: String?
    @Flag(help: "Reload a Lua plugin whose file changed, between records (the old one stays if the new fails).")
    var watch = false
    @Option(help: "Write a Chrome trace-event JSON of plugin calls to this file (open it in Perfetto).")
    var trace: String?
    @Flag(help: "Allow output in a different order than input (the output is in input order either way today).")
    var unordered = false
    @Option(name: .customLong("exit-when-idle-ms"), help: "With a stream input: end the run after this many ms with nothing read and nothing in flight (1 to 86,400,000).")
    var exitWhenIdleMs: Int?
    @Option(help: "Serve Prometheus metrics at http://HOST:PORT/metrics while the run goes on (port 0: any free port; the address is printed on stderr).")
    var metrics: String?

    func validate() throws {
        if let m = Ranges.check(workers, Ranges.workers, "--workers") { throw ValidationError(m) }
        if let m = Ranges.check(batchSize, Ranges.batchSize, "--batch-size") { throw ValidationError(m) }
        if let m = Ranges.check(hostMemoryMb, Ranges.hostMemoryMb, "--host-memory-mb") { throw ValidationError(m) }
        if let p = onInputError, !["fail", "drop", "dead-letter"].contains(p) {
            throw ValidationError("--on-input-error must be fail, drop or dead-letter (got '\(p)')")
        }
        try validateRedis()
        try validateMetrics()
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)
        let m: Manifest
        let shared: RedisSharedURL?
        do {
            m = try Manifest.load(path: manifest)
            shared = try Self.sharedURL(m)
        } catch {
            report(error)
            throw ExitCode(Exit.usage)
        }
        let pool = WorkerPool(count: workers)
        let io = WorkerPool(count: 2, name: "luapipe-io")
        defer {
            pool.shutdown()
            io.shutdown()
        }
        // One HTTP client for the run, its pool as large as the largest `concurrency`, shut
        // down when the run is over, however it ends.
        let registry = LuaPipeCLI.registry()
        let http = HTTPClientService(connectionsPerHost: m.entries.map(\.concurrency).max() ?? 64)
        registry.http = http
        do {
            try await run(m, shared, registry, pool, io)
        } catch {
            await http.shutdown()
            throw error
        }
        await http.shutdown()
    }

    private func run(_ m: Manifest, _ sharedURL: RedisSharedURL?, _ registry: PluginRegistry, _ pool: WorkerPool,
                     _ io: WorkerPool) async throws {
        let builder = PipelineBuilder(
            manifest: m, registry: registry,
            options: .init(workers: workers, deadLetter: deadLetter.map { RedisStreamURL.isRedis($0) ? $0 : FileIO.absolute($0) },
                           onInputError: onInputError.flatMap(ErrorPolicy.init(rawValue:)),
                           hotReload: watch ? HotReload() : nil),
            pool: pool)
        let resolved: [PipelineBuilder.Resolved]
        do { resolved = try await builder.resolve() } catch {
            report(error)
            throw ExitCode(Exit.usage)
        }

        if let (collision, quiet) = collisions(builder, resolved) {
            // stderr is one of the run's files: exit 2 without a word rather than write in it.
            if !quiet { printError("luapipe: error: \(collision)") }
            throw ExitCode(Exit.usage)
        }

        if let m = claimCheck(builder) {
            printError("luapipe: error: \(m)")
            throw ExitCode(Exit.usage)
        }
        let monitor = RunMonitor()
        let served = try await startMetrics(monitor, entries: resolved.map(\.id))
        do {
            try await execute(builder, resolved, sharedURL, registry, io, monitor, served)
        } catch {
            await served?.stop()
            throw error
        }
        await served?.stop()
    }

    /// The run proper, once the manifest and the flags are known to be good.
    private func execute(_ builder: PipelineBuilder, _ resolved: [PipelineBuilder.Resolved], _ sharedURL: RedisSharedURL?,
                         _ registry: PluginRegistry, _ io: WorkerPool, _ monitor: RunMonitor, _ served: MetricsRun?) async throws {
        // Files before any plugin is set up: a wrong path is a usage error.
        let streamIn = RedisStreamURL.isRedis(input), streamOut = RedisStreamURL.isRedis(output)
        let inFD: Int32 = input == "-" || streamIn ? 0 : open(input, O_RDONLY | O_CLOEXEC)
        if inFD < 0 {
            printError("luapipe: error: cannot open --input \(input): \(String(cString: strerror(errno)))")
            throw ExitCode(Exit.usage)
        }
        let outFD: Int32 = output == "-" || streamOut ? 1 : open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if outFD < 0 {
            printError("luapipe: error: cannot open --output \(output): \(String(cString: strerror(errno)))")
            throw ExitCode(Exit.usage)
        }
        let stop = StopFlag()
        let redis: RedisIO
        do { redis = try RedisIO(input: input, output: output, deadLetter: builder.deadLetterPath, batchSize: batchSize,
                                 hostMemory: hostMemoryMb << 20, exitWhenIdleMs: exitWhenIdleMs, stop: stop) } catch {
            printError("luapipe: error: \(error)")
            throw ExitCode(Exit.usage)
        }
        var dlq: (any DeadLetterSink)? = redis.deadLetter
        if dlq == nil, let path = builder.deadLetterPath {
            do { dlq = try DeadLetterFile(path: path, worker: io.workers[1]) } catch {
                report(PipelineError.wrap(error, plugin: nil, recordNumber: nil))
                throw ExitCode(Exit.usage)
            }
        }

        let signals = Self.watchSignals(stop, drainFor: redis.source == nil ? nil : longestTimeout(builder))
        defer { signals.cancel() }

        let shared = try await connectShared(sharedURL, stop)
        let tracer = trace.map { _ in Tracer() }
        let pipeline = Pipeline(stages: builder.stages(resolved), store: shared, tracer: tracer, hostMemory: hostMemoryMb << 20,
                                ioThreads: io.workers)
        (registry.http as? HTTPClientService)?.budget = pipeline.budget  // answers in flight count too
        let file = JSONLinesSource(fd: inFD, worker: io.workers[0], closeOnEnd: input != "-" && !streamIn, batchSize: batchSize)
        let source: any RecordSource = redis.source ?? file
        let sink: any RecordSink = redis.output
            ?? JSONLinesSink(fd: outFD, worker: io.workers[1], name: output == "-" ? "stdout" : output, closeOnEnd: output != "-")
        let progress = isatty(2) != 0 && !streamIn ? Self.showProgress(file) : nil
        defer { progress?.cancel() }
        let watcher = builder.options.hotReload?.watch()
        defer { watcher?.cancel() }
        if let s = redis.source { served?.pollPending(s) }
        let outcome: Pipeline.Outcome
        do {
            outcome = try await pipeline.run(source: source, sink: sink, deadLetter: dlq,
                                             onInputError: builder.onInputError, stop: stop, monitor: monitor)
            await served?.stop()
            await redis.close()
            await shared?.close()
        } catch {
            await served?.stop()
            await redis.close()
            await shared?.close()
            report(error)
            if let sig = stop.signal {
                // A signal came while plugins were set up: no record was read.
                var empty = RunStats()
                empty.plugins = resolved.map { PluginStats(id: $0.id, kind: $0.kind) }
                writeStats(empty)
                // A setup that did not return may still hold its thread: end here, as below.
                StderrWriter.shared.drain()
                Glibc.exit(128 + sig)
            }
            throw ExitCode(error.code == .manifest ? Exit.usage : Exit.failed)
        }
        var written = writeStats(outcome.stats)
        if let trace, let tracer { written = writeFile(trace, what: "--trace", tracer.write) && written }
        var code = written ? Exit.ok : Exit.failed  // figures nobody can read are a failure
        if let e = outcome.error { report(e) }
        // A signal names the exit even when the shutdown it caused failed something (a flush
        // cut short): the user asked the run to stop, and it did.
        if let sig = outcome.signal {
            code = 128 + sig
        } else if outcome.error != nil {
            code = Exit.failed
        }
        if outcome.abandonedInstances > 0 {
            // A thread is stuck inside a call: the pool cannot be joined. The figures and
            // outputs are written; end the process here.
            StderrWriter.shared.drain()
            Glibc.exit(code)
        }
        if code != Exit.ok { throw ExitCode(code) }
    }

    /// Every file the run writes against every file it reads and against each other: the
    /// first collision, and whether stderr is one of the files (then nothing may be said there).
    func collisions(_ builder: PipelineBuilder, _ resolved: [PipelineBuilder.Resolved]) -> (String, Bool)? {
        var paths = PathCollisions()
        if input == "-" { paths.read(fd: 0, "--input - (standard input)") } else if !RedisStreamURL.isRedis(input) { paths.read(input, "--input \(input)") }
        paths.read(manifest, "the manifest \(manifest)")
        for r in resolved {
            if let lua = r.lua {
                paths.read(lua.path, "plugin file \(lua.path)")
                paths.modules(lua.folder, "plugin '\(r.id)'")
            }
            for file in r.native?.reads?(r.entry.config.objectValue ?? Record(), builder.manifest.directory) ?? [] {
                paths.read(file, "\(r.id)'s file \(file)")
            }
        }
        if output == "-" { paths.write(fd: 1, "--output - (standard output)") } else if !RedisStreamURL.isRedis(output) { paths.write(output, "--output \(output)") }
        if let d = builder.deadLetterPath, !RedisStreamURL.isRedis(d) { paths.write(d, "the dead-letter file \(d)") }
        if let s = statsJSON { paths.write(s, "--stats-json \(s)") }
        if let t = trace { paths.write(t, "--trace \(t)") }
        paths.logs(fd: 2, "stderr")
        return paths.check().map { ($0, paths.logsCollide) }
    }

    /// Prints and writes the figures; false when the file could not be written (said on stderr).
    @discardableResult
    func writeStats(_ s: RunStats) -> Bool {
        if stats { printError(s.table) }
        guard let path = statsJSON else { return true }
        return writeFile(path, Array((JSONWriter.encode(s.json) + "\n").utf8), what: "--stats-json")
    }

    /// Writes the figures or the trace. A FIFO gets 2 s to take them (one nobody reads must
    /// not hold the exit); opening one that nobody has open for reading fails at once.
    func writeFile(_ path: String, _ bytes: [UInt8], what: String) -> Bool {
        writeFile(path, what: what) { put in _ = put(bytes) }
    }

    /// The same for a document made in pieces: `produce` hands each to the writer it gets,
    /// which says false once writing failed. A FIFO gets 2 s for all of it.
    func writeFile(_ path: String, what: String, _ produce: (([UInt8]) -> Bool) -> Void) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0o644)
        var failure = fd < 0 ? (errno == ENXIO ? EPIPE : errno) : 0
        if fd >= 0 {
            var st = stat()
            let fifo = fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFIFO
            if !fifo { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) }
            let end = ContinuousClock.now + .seconds(2)
            produce { bytes in
                guard failure == 0 else { return false }
                if fifo {
                    failure = Self.writeWithin(fd, bytes, until: end)
                } else {
                    do { try FileIO.writeAll(fd, bytes, what: path) } catch { failure = errno == 0 ? EIO : errno }
                }
                return failure == 0
            }
            if close(fd) != 0, failure == 0 { failure = errno }
        }
        if failure != 0 {
            printError("luapipe: error: cannot write \(what) \(path): \(String(cString: strerror(failure)))")
        }
        return failure == 0
    }

    /// Writes `bytes` to a non-blocking `fd` by `end`; 0 or the errno (ETIMEDOUT).
    static func writeWithin(_ fd: Int32, _ bytes: [UInt8], until end: ContinuousClock.Instant) -> Int32 {
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n > 0 { done += n; continue }
            if n < 0, errno != EAGAIN, errno != EINTR { return errno }
            let left = end - .now
            if left <= .zero { return ETIMEDOUT }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&p, 1, Int32(max(1, left.milliseconds)))
        }
        return 0
    }

    /// Records and records/s on stderr once a second, only when stderr is a terminal.
    static func showProgress(_ source: JSONLinesSource) -> Task<Void, Never> {
        Task {
            let started = ContinuousClock.now
            var shown = false
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if Task.isCancelled { break }
                let n = source.recordsRead
                let secs = Double((ContinuousClock.now - started).components.seconds) + 0.001
                FileHandleStderr.write("\rluapipe: \(n) records, \(Int(Double(n) / secs)) records/s   ")
                shown = true
            }
            if shown { FileHandleStderr.write("\r\u{1B}[K") }
        }
    }

    /// SIGINT and SIGTERM stop reading; records in flight finish, then teardown and stats.
    /// A plain handler stores the signal in an atomic (async-signal-safe); a task passes it
    /// on. (A Dispatch signal source lost signals here when another thread took them.)
    ///
    /// With a stream input (`drainFor` set) a signal first drains: reading stops and what was
    /// read goes through, is written and acknowledged; after `drainFor` (the longest
    /// `timeout_ms`) the run halts like any other.
    static func watchSignals(_ stop: StopFlag, drainFor: Duration? = nil) -> Task<Void, Never> {
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { s in pendingSignal.store(s, ordering: .relaxed) }
        }
        return Task {
            while !Task.isCancelled {
                let s = pendingSignal.load(ordering: .relaxed)
                if s != 0 {
                    guard let drainFor else {
                        stop.set(signal: s)
                        return
                    }
                    stop.drain(signal: s)
                    try? await Task.sleep(for: drainFor)
                    if !Task.isCancelled { stop.set(signal: s) }
                    return
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }
}

/// The last SIGINT/SIGTERM received, 0 for none.
let pendingSignal = Atomic<Int32>(0)
