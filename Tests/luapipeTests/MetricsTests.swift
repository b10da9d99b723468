import Foundation
import Testing

/// `luapipe run --metrics HOST:PORT` end to end (docs/reference.md, "Metrics"): the address
/// on stderr, the figures at `/metrics` while the run goes on, the server gone at the end,
/// bad values refused. (RedisStreamTests+Metrics has the pending count of a stream input.)
@Suite("Prometheus metrics of a run, end to end", .serialized)
struct MetricsTests {
    static let duration = "luapipe_plugin_call_duration_seconds"

    /// 1,000 records, every 100th with a name that is not a string (upper drops it), and 3
    /// lines that are not records (dropped).
    static var input: String {
        var lines = (1...1000).map { i in i % 100 == 0 ? "{\"id\":\(i),\"n\":\(i),\"name\":\(i)}" : "{\"id\":\(i),\"n\":\(i),\"name\":\"r\(i)\"}" }
        lines.insert("not json", at: 10)
        lines.insert("[1,2]", at: 500)
        lines.insert("{\"id\":", at: 900)
        return lines.joined(separator: "\n") + "\n"
    }

    @Test("while the input stays open, /metrics counts what went through: records, calls, errors, histograms; the server ends with the run")
    func countsWhileRunning() async throws {
        let stats = Binary.temp("metrics-stats.json"), output = Binary.temp("metrics-out.jsonl")
        let run = try MetricsProcess(["run", "metrics.yaml", "--metrics", "127.0.0.1:0", "--on-input-error", "drop",
                                      "--output", output, "--stats-json", stats])
        let url = try #require(await run.url(), "no address on stderr: \(run.stderrText)")
        #expect(url.hasPrefix("http://127.0.0.1:") && url.hasSuffix("/metrics"), "\(url)")
        #expect(!url.hasSuffix(":0/metrics"), "the port the system chose is printed: \(url)")
        run.feed(Self.input)  // and the input stays open: the run goes on
        let scrape = try await Binary.offPool { () -> Scrape? in
            var last: Scrape?
            _ = eventually(60) {
                guard let r = try? curl(url), r.status == 0 else { return false }
                last = Scrape(r.body)
                return last?["luapipe_records_read_total"] == 1003 && last?["luapipe_records_written_total"] == 990
                    && last?["luapipe_plugin_calls_total{entry=\"napper\"}"] == 990
            }
            return last
        }
        let s = try #require(scrape)
        #expect(run.process.isRunning, "the run was to go on while its input is open")
        #expect(s["luapipe_records_read_total"] == 1003)
        #expect(s["luapipe_records_written_total"] == 990)
        #expect(s["luapipe_input_errors_total"] == 3)
        #expect(s["luapipe_records_dropped_total"] == 13)
        #expect(s["luapipe_records_dead_lettered_total"] == 0)
        #expect(s["luapipe_plugin_calls_total{entry=\"upper\"}"] == 1000)
        #expect(s["luapipe_plugin_calls_total{entry=\"set\"}"] == 990)
        #expect(s["luapipe_plugin_errors_total{entry=\"upper\",kind=\"error\"}"] == 10)
        #expect(s["luapipe_plugin_errors_total{entry=\"upper\",kind=\"timeout\"}"] == 0)
        #expect(s["luapipe_plugin_errors_total{entry=\"napper\",kind=\"error\"}"] == 0)
        for (name, type) in [("luapipe_records_read_total", "counter"), ("luapipe_plugin_calls_total", "counter"),
                             ("luapipe_plugin_records_in_flight", "gauge"), (Self.duration, "histogram")] {
            #expect(s.types[name] == type, "\(name)")
        }
        for entry in ["upper", "set", "napper"] {
            let labels = "entry=\"\(entry)\""
            let calls = try #require(s["luapipe_plugin_calls_total{\(labels)}"])
            #expect(s["\(Self.duration)_count{\(labels)}"] == calls, "\(entry): the histogram counts every call")
            let buckets = s.buckets(Self.duration, labels)
            #expect(buckets.count == 22 && buckets.last == calls, "\(entry): \(buckets)")
            #expect(zip(buckets, buckets.dropFirst()).allSatisfy { $0 <= $1 }, "\(entry): cumulative buckets \(buckets)")
            #expect((s["\(Self.duration)_sum{\(labels)}"] ?? 0) > 0)
            #expect(s["luapipe_plugin_records_in_flight{\(labels)}"] == 0, "\(entry): nothing left in flight")
        }

        run.closeInput()
        let end = try await Binary.offPool { run.wait() }
        #expect(end.status == 0, "\(end.stderr)")
        let figures = try Binary.stats(stats)
        let plugins = figures["plugins"] as? [[String: Any]] ?? []
        #expect(plugins.map { $0["calls"] as? Int } == [1000, 990, 990], "the same counts as --stats-json")
        let after = try await Binary.offPool { try curl(url) }
        // Nothing serves there once the run is over (curl 7: refused; another test's process
        // may have been given the freed port since).
        #expect(after.status != 0 || !after.body.contains("luapipe_"), "curl \(after.status): \(after.body)")
    }

    @Test("records waiting in a plugin are in flight; SIGTERM still ends the run with 143")
    func inFlightAndSignal() async throws {
        let m = Binary.temp("metrics-waiter.yaml")
        try "api: 1\nplugin_paths: [\(Binary.fixtures)/plugins]\nplugins:\n  - use: waiter\n    config: { seconds: 30 }\n    concurrency: 8\n    timeout_ms: 60000\n"
            .write(toFile: m, atomically: true, encoding: .utf8)
        let run = try MetricsProcess(["run", m, "--metrics", "127.0.0.1:0", "--output", "/dev/null"])
        let url = try #require(await run.url(), "no address on stderr: \(run.stderrText)")
        run.feed(Binary.records(20))
        let seen = try await Binary.offPool { () -> Scrape? in
            var last: Scrape?
            _ = eventually(60) {
                guard let r = try? curl(url), r.status == 0 else { return false }
                last = Scrape(r.body)
                return last?["luapipe_plugin_records_in_flight{entry=\"waiter\"}"] == 8
            }
            return last
        }
        #expect(seen?["luapipe_plugin_records_in_flight{entry=\"waiter\"}"] == 8, "concurrency 8: 8 records wait at once")
        #expect(seen?["luapipe_records_read_total"] == 20)
        #expect(seen?["luapipe_plugin_calls_total{entry=\"waiter\"}"] == 0, "no call has returned")
        run.signal(SIGTERM)
        let end = try await Binary.offPool { run.wait(timeout: 30) }
        #expect(end.status == 143, "\(end.stderr)")
    }

    @Test("a --metrics value that cannot be used: exit 2, what is wrong on stderr, no output file made",
          arguments: [
              ("127.0.0.1", "no port"), ("127.0.0.1:", "no port"), (":9464", "no host"), ("127.0.0.1:65536", "from 0 to 65,535"),
              ("127.0.0.1:http", "from 0 to 65,535"), ("::1:9464", "in brackets"), ("[::1]", "no port"),
              ("nosuchhost.invalid:9464", "cannot resolve host 'nosuchhost.invalid'"),
          ])
    func badValues(_ value: String, _ message: String) async throws {
        let output = Binary.temp("metrics-bad-\(UUID().uuidString).jsonl")
        let r = try await Binary.runOffPool(["run", "metrics.yaml", "--metrics", value, "--output", output], input: "{\"name\":\"a\",\"n\":1}\n")
        #expect(r.status == 2, "\(value): \(r.stderr)")
        #expect(r.stderr.contains("--metrics \(value): ") && r.stderr.contains(message), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: output), "nothing is written before the server listens")
    }

    @Test("a port another process listens on: exit 2, said on stderr, no output file made")
    func portInUse() async throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && listen(fd, 1) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: addr.sin_port))
        let output = Binary.temp("metrics-inuse.jsonl")
        try? FileManager.default.removeItem(atPath: output)
        let r = try await Binary.runOffPool(["run", "metrics.yaml", "--metrics", "127.0.0.1:\(port)", "--output", output],
                                            input: "{\"name\":\"a\",\"n\":1}\n")
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("--metrics 127.0.0.1:\(port): cannot listen there: Address already in use"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: output))
    }
}
