import Foundation
import Testing

@Suite("Fault injection and bad input, end to end", .serialized)
struct FaultTests {
    static let records = 20_000

    static var input: String {
        (1...records).map { "{\"id\":\($0)}" }.joined(separator: "\n") + "\n"
    }

    /// Failures at ~1% under each policy and worker count: the identity holds, and every id is
    /// written, dropped or dead-lettered exactly once.
    @Test("1% injected failures under every policy and --workers 1, 3 and 16", arguments: ["skip", "drop", "dead-letter"], [1, 3, 16])
    func injected(_ policy: String, _ workers: Int) async throws {
        let dir = Binary.temp("fault-\(policy)-\(workers)")
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "api: 1\nplugin_paths: [\(Binary.fixtures)/plugins]\ndead_letter: dl.jsonl\nplugins:\n  - use: flaky\n    on_error: \(policy)\n"
            .write(toFile: dir + "/p.yaml", atomically: true, encoding: .utf8)
        let r = try await Binary.runOffPool(["run", dir + "/p.yaml", "--workers", "\(workers)", "--stats-json", dir + "/s.json"], input: Self.input)
        #expect(r.status == 0, "\(r.stderr)")
        let s = try Binary.stats(dir + "/s.json")
        #expect(Binary.balanced(s), "\(s)")
        var seen: [Int: Int] = [:]
        var extras = 0
        var lastId = 0
        var inOrder = true
        for line in r.lines {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            if let id = obj["id"] as? Int {
                seen[id, default: 0] += 1
                if id < lastId { inOrder = false }
                lastId = id
            } else if obj["extra_for"] != nil {
                extras += 1
            }
        }
        let dl = (try? String(contentsOfFile: dir + "/dl.jsonl", encoding: .utf8)) ?? ""
        for line in dl.split(separator: "\n") {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            let id = (obj["record"] as? [String: Any])?["id"] as? Int ?? -1
            seen[id, default: 0] += 1
        }
        let failed = (s["dropped"] as? Int ?? 0) + (s["dead_lettered"] as? Int ?? 0)
        #expect(inOrder)
        #expect(seen.values.allSatisfy { $0 == 1 }, "an id was written twice")
        let expectedSeen = policy == "drop" ? Self.records - (s["dropped"] as? Int ?? 0) : Self.records
        #expect(seen.count == expectedSeen, "\(seen.count) ids accounted for, \(failed) failed")
        #expect(extras == s["emitted"] as? Int)
        let errors = (s["plugins"] as? [[String: Any]])?.first?["errors"] as? Int ?? 0
        #expect(errors > 100 && errors < 400, "about 1% of 20,000: \(errors)")
    }

    @Test("bad input: a 10 MB line, 100k nesting, binary garbage, huge numbers", arguments: [
        ("BIG", true, ""),
        ("DEEP", false, "nesting deeper than 512"),
        ("\u{7}\u{1}garbage\u{FF}", false, "unexpected character"),
        ("{\"name\":\"n\",\"n\":123456789012345678901234567890}", true, "1.2345678901234568e+29"),
        ("{\"name\":\"z\",\"n\":-0,\"f\":1E2,\"g\":1e-7}", true, "\"n\":0,\"f\":100.0,\"g\":1e-07}"),
    ])
    func badInput(_ given: String, _ ok: Bool, _ expected: String) async throws {
        // Built here so a failure message does not print 10 MB.
        let line = switch given {
        case "BIG": "{\"name\":\"big\",\"big\":\"" + String(repeating: "x", count: 10 << 20) + "\"}"
        case "DEEP": String(repeating: "[", count: 100_000)
        default: given
        }
        let r = try await Binary.runOffPool(["run", "basic.yaml", "--on-input-error", "drop", "--stats"],
                               input: "{\"name\":\"a\"}\n" + line + "\n{\"name\":\"b\"}")
        #expect(r.status == 0, "\(r.stderr.prefix(500))")
        #expect(r.lines.first == #"{"name":"A"}"# && r.lines.last == #"{"name":"B"}"#)
        if ok {
            #expect(r.lines.count == 3)
            if r.lines.count == 3 {
                #expect(r.lines[1].count >= (given == "BIG" ? 10 << 20 : 0))
                if !expected.isEmpty { #expect(r.lines[1].contains(expected), "\(r.lines[1].prefix(200))") }
            }
        } else {
            #expect(r.lines.count == 2)
            #expect(r.stderr.contains("records in 3, out 2, dropped 1"), "\(r.stderr.prefix(500))")
        }
    }
}
