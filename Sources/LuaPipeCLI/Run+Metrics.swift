import ArgumentParser
import LuaPipeCore
import LuaPipeMetrics
import LuaPipeRedis

/// `--metrics HOST:PORT` (docs/reference.md, "Metrics"): a Prometheus endpoint for the length
/// of the run, and, with a stream input, a poll of the consumer group's pending count.
final class MetricsRun: Sendable {
    let server: MetricsServer
    let metrics: RunMetrics
    private let poller = Locked<Task<Void, Never>?>(nil)
    private let stopped = Locked(false)

    init(server: MetricsServer, metrics: RunMetrics) {
        self.server = server
        self.metrics = metrics
    }

    /// Asks Redis for the group's pending count once a second until `stop`. The question goes
    /// to the source's own connection, on its own thread: a scrape never waits for Redis.
    func pollPending(_ source: RedisStreamSource) {
        let (metrics, stream, group) = (metrics, source.url.stream, source.url.group ?? "")
        let task = Task {
            while !Task.isCancelled {
                if let n = await source.pending() { metrics.setPending(n, stream: stream, group: group) }
                try? await Task.sleep(for: .seconds(1))
            }
        }
        poller.withLock { $0 = task }
    }

    /// Stops the poll and the server (once; later calls do nothing). Called when the run is
    /// over, before the Redis connections close.
    func stop() async {
        guard stopped.withLock({ done in defer { done = true }; return !done }) else { return }
        if let task = poller.withLock({ $0 }) {
            task.cancel()
            await task.value
        }
        await server.stop()
    }
}

extension Run {
    /// The form of `--metrics` (a usage error, exit 2, when it is not HOST:PORT).
    func validateMetrics() throws {
        guard let metrics else { return }
        do { _ = try ListenAddress(parsing: metrics) } catch { throw ValidationError(error.message) }
    }

    /// Starts the server before any file is opened for writing and any plugin set up, and
    /// says where it listens on stderr. A host that does not resolve or a port in use is a
    /// usage error (exit 2), like a file that cannot be opened.
    func startMetrics(_ monitor: RunMonitor, entries: [String]) async throws -> MetricsRun? {
        guard let metrics else { return nil }
        let figures = RunMetrics(monitor: monitor, entries: entries)
        do {
            let server = try await MetricsServer.start(try ListenAddress(parsing: metrics), metrics: figures)
            printError("luapipe: metrics on \(server.url)")
            return MetricsRun(server: server, metrics: figures)
        } catch {
            printError("luapipe: error: \(error.message)")
            throw ExitCode(Exit.usage)
        }
    }
}
