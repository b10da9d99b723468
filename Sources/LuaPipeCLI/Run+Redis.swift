import ArgumentParser
import Logging
import LuaPipe
import LuaPipeCore
import LuaPipeRedis

/// `--input`, `--output` and `--dead-letter` as Redis streams (docs/reference.md, "Redis
/// streams"): what the run reads from and writes to when they are `redis://` URLs.
struct RedisIO {
    var source: RedisStreamSource?
    var output: RedisStreamWriter?
    var deadLetter: RedisStreamWriter?

    /// Nothing connects yet: connections open on first use, and a Redis that is not there
    /// is waited out then.
    init(input: String, output: String, deadLetter: String?, batchSize: Int, hostMemory: Int, exitWhenIdleMs: Int?,
         stop: StopFlag) throws {
        let logger = Logger(label: "luapipe")
        if RedisStreamURL.isRedis(input) {
            // A read is held whole before the host budget sees it: an eighth of the budget.
            source = RedisStreamSource(url: try RedisStreamURL.input(input), batchSize: batchSize,
                                       readBytes: hostMemory / 8, exitWhenIdleMs: exitWhenIdleMs, logger: logger)
        }
        var ids: (@Sendable (Int) -> String?)? = nil
        if let s = source { ids = { s.sourceID(of: $0) } }
        if RedisStreamURL.isRedis(output) {
            self.output = RedisStreamWriter(url: try RedisStreamURL.output(output), what: "output", sourceID: ids,
                                            stop: stop, logger: logger)
        }
        if let deadLetter, RedisStreamURL.isRedis(deadLetter) {
            self.deadLetter = RedisStreamWriter(url: try RedisStreamURL.output(deadLetter, flag: "--dead-letter"),
                                                what: "dead letters", sourceID: ids, stop: stop, logger: logger)
        }
    }

    func close() async {
        await source?.close()
    }
}

extension Run {
    /// The URLs' form, before anything is loaded: a bad URL is a usage error (exit 2).
    func validateRedis() throws {
        do {
            if RedisStreamURL.isRedis(input) { _ = try RedisStreamURL.input(input) }
            if RedisStreamURL.isRedis(output) { _ = try RedisStreamURL.output(output) }
            if let d = deadLetter, RedisStreamURL.isRedis(d) { _ = try RedisStreamURL.output(d, flag: "--dead-letter") }
        } catch {
            throw ValidationError(error.message)
        }
        if let ms = exitWhenIdleMs {
            if let m = Ranges.check(ms, Ranges.milliseconds, "--exit-when-idle-ms") { throw ValidationError(m) }
            if !RedisStreamURL.isRedis(input) {
                throw ValidationError("--exit-when-idle-ms applies to a stream input (--input redis://...); a file input ends with the file")
            }
        }
        if input == output, RedisStreamURL.isRedis(input) {
            throw ValidationError("--input and --output name the same stream")
        }
    }

    /// `claim_idle_ms` must exceed every entry's `timeout_ms`: an entry another consumer is
    /// still working on is not claimed from it.
    func claimCheck(_ builder: PipelineBuilder) -> String? {
        guard RedisStreamURL.isRedis(input), let url = try? RedisStreamURL.input(input) else { return nil }
        guard let slowest = builder.manifest.entries.max(by: { $0.timeoutMs < $1.timeoutMs }),
              url.claimIdleMs <= slowest.timeoutMs else { return nil }
        return "--input \(input): claim_idle_ms (\(url.claimIdleMs)) must exceed the longest timeout_ms "
            + "(\(slowest.timeoutMs), entry '\(slowest.id ?? slowest.use)'), or a record still being worked on would be claimed by another consumer"
    }

    /// The longest `timeout_ms`: how long a signal lets a stream run drain.
    func longestTimeout(_ builder: PipelineBuilder) -> Duration {
        .milliseconds(builder.manifest.entries.map(\.timeoutMs).max() ?? 1000)
    }

    /// The manifest's `shared:` URL; one that cannot be used is a manifest error (exit 2)
    /// naming the file, the line and the key. Nil: the in-process store.
    static func sharedURL(_ m: Manifest) throws(PipelineError) -> RedisSharedURL? {
        guard let s = m.shared else { return nil }
        do {
            return try RedisSharedURL.parse(s, what: "\(m.sharedLocation ?? m.path): shared:")
        } catch {
            throw PipelineError(.manifest, error.message, location: m.sharedLocation)
        }
    }

    /// The store of `shared: redis://...`, once Redis answers: a Redis not there yet is waited
    /// out (logged, with backoff) like the stream input's; a signal meanwhile ends the run.
    func connectShared(_ url: RedisSharedURL?, _ stop: StopFlag) async throws -> RedisSharedStore? {
        guard let url else { return nil }
        let store = RedisSharedStore(url: url)
        do {
            try await store.waitUntilReachable(stop: stop, logger: Logger(label: "luapipe"))
        } catch {
            await store.close()
            if let sig = stop.signal { throw ExitCode(128 + sig) }
            report(PipelineError.wrap(error, plugin: nil, recordNumber: nil))
            throw ExitCode(Exit.failed)
        }
        return store
    }
}
