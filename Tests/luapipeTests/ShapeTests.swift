import Foundation
import Testing

/// The shapes users have, not the shape of this machine: many worker counts, instance counts,
/// batch sizes and input sizes. Every record must come out once, in order, through every entry.
@Suite("Worker counts, instances and batch sizes, end to end")
struct ShapeTests {
    static let batchSizes = [1, 2, 7, 1000, 1025]
    static let counts = [1, 2, 7, 1000, 1025, 5000]

    @Test("every record, in order, through every entry", arguments: [1, 3, 4, 7, 16, 64])
    func workers(_ workers: Int) async throws {
        for batch in Self.batchSizes {
            for count in Self.counts {
                try await Self.check("stamps.yaml", ["--workers", "\(workers)", "--batch-size", "\(batch)"], count: count)
            }
        }
    }

    @Test("manifest `instances` differing from --workers", arguments: [1, 3, 16])
    func instances(_ workers: Int) async throws {
        for batch in [1, 7, 1025] {
            for count in [5, 1000, 5000] {
                try await Self.check("instances.yaml", ["--workers", "\(workers)", "--batch-size", "\(batch)"], count: count)
            }
        }
    }

    @Test("records in flight come from one batch: concurrency 1000 with --batch-size 7 keeps 7 waiting at most")
    func concurrencyWithinBatch() async throws {
        let manifest = Binary.temp("shape-waiter.yaml")
        try "api: 1\nplugin_paths: [\(Binary.fixtures)/plugins]\nplugins:\n  - use: waiter\n    concurrency: 1000\n    config: { seconds: 0.05 }\n"
            .write(toFile: manifest, atomically: true, encoding: .utf8)
        for (batch, expected) in [(7, 7), (1024, 40)] {
            let stats = Binary.temp("shape-waiter-\(batch).json")
            let input = Binary.records(40)
            let r = try await Binary.runOffPool(["run", manifest, "--batch-size", "\(batch)", "--stats-json", stats], input: input)
            #expect(r.status == 0 && r.lines.count == 40, "\(r.stderr)")
            let p = (try Binary.stats(stats)["plugins"] as? [[String: Any]])?.first ?? [:]
            #expect(p["in_flight_max"] as? Int == expected, "batch \(batch): \(p)")
        }
    }

    static func check(_ manifest: String, _ flags: [String], count: Int) async throws {
        let dir = Binary.temp("shape-\(manifest)-\(flags.joined(separator: "-"))-\(count)")
        let input = (1...count).map { "{\"id\":\($0),\"name\":\"x\"}" }.joined(separator: "\n") + "\n"
        try input.write(toFile: dir + ".in", atomically: true, encoding: .utf8)
        let r = try await Binary.runOffPool(["run", manifest, "--input", dir + ".in", "--stats-json", dir + ".json"] + flags)
        let label = "\(manifest) \(flags) \(count) records"
        #expect(r.status == 0, "\(label): \(r.stderr.prefix(500))")
        let expected = (1...count).map { "{\"id\":\($0),\"name\":\"X\",\"seen\":[\"a\",\"b\"]}" }
        #expect(r.lines.count == count, "\(label): \(r.lines.count) lines")
        if r.lines != expected {
            let bad = zip(r.lines, expected).enumerated().first { $0.element.0 != $0.element.1 }
            Issue.record("\(label): line \((bad?.offset ?? 0) + 1) is \(bad?.element.0 ?? "missing")")
        }
        let s = try Binary.stats(dir + ".json")
        #expect(Binary.balanced(s) && s["records_out"] as? Int == count, "\(label): \(s)")
    }
}
