import Foundation
import Testing

extension RedisStreamTests {
    @Test("--metrics with a stream input: the consumer group's pending count (XPENDING), as Redis has it")
    func metricsPending() async throws {
        let redis = try RedisServer()
        try redis.fill("in", json: Self.records(100))
        try redis.cli(["XGROUP", "CREATE", "in", "g", "0"])
        try redis.cli(["XREADGROUP", "GROUP", "g", "gone", "COUNT", "20", "STREAMS", "in", ">"])  // never acknowledged
        let m = try Self.manifest("metrics", "  - use: upper\n")
        // claim_idle_ms far off: the 20 entries stay with the consumer that is gone.
        let run = try MetricsProcess(["run", m, "--input", redis.url("in", "group=g&consumer=live&claim_idle_ms=600000"),
                                      "--output", redis.url("out"), "--metrics", "127.0.0.1:0"])
        let url = try #require(await run.url(), "no address on stderr: \(run.stderrText)")
        let pending = "luapipe_redis_pending{stream=\"in\",group=\"g\"}"
        let seen = try await Binary.offPool { () -> Scrape? in
            var last: Scrape?
            _ = eventually(60) {
                guard let r = try? curl(url), r.status == 0 else { return false }
                last = Scrape(r.body)
                return last?["luapipe_records_written_total"] == 80 && last?[pending] == 20
            }
            return last
        }
        #expect(seen?["luapipe_records_read_total"] == 80)
        #expect(seen?["luapipe_plugin_calls_total{entry=\"upper\"}"] == 80)
        #expect(seen?[pending] == 20, "the 20 entries the gone consumer holds")
        #expect(seen?.types["luapipe_redis_pending"] == "gauge")
        #expect(redis.pending("in", "g") == 20)
        run.signal(SIGTERM)
        let end = try await Binary.offPool { run.wait(timeout: 30) }
        #expect(end.status == 143, "\(end.stderr)")
    }
}
