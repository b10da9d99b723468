import Foundation
import Testing

/// Every hostile case of Tests/LuaRuntimeTests/Fixtures/hostile, run through the luapipe
/// binary as a plugin (hostile_runner.lua) under `timeout_ms: 200`, `memory_mb: 32` and
/// `on_error: dead-letter`: each must end in its reported error: no crash, no hang, no escape
/// (a record written as if nothing happened), clean JSON on stdout, the accounting identity.
@Suite("Hostile plugins through the binary", .serialized)
struct HostileE2ETests {
    static let dir = Binary.packageRoot + "/Tests/LuaRuntimeTests/Fixtures/hostile"

    static var cases: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
            .filter { $0.hasSuffix(".lua") && $0 != "hostile_runner.lua" }.sorted()
    }

    static func expectation(_ file: String) -> String {
        let text = (try? String(contentsOfFile: dir + "/" + file, encoding: .utf8)) ?? ""
        let first = text.split(separator: "\n").first.map(String.init) ?? ""
        return first.hasPrefix("-- expect: ") ? String(first.dropFirst(11)) : ""
    }

    @Test("the suite covers at least 40 hostile plugins")
    func size() { #expect(Self.cases.count >= 40) }

    @Test("each hostile plugin ends as its policy says", arguments: cases)
    func hostile(_ file: String) async throws {
        let name = String(file.dropLast(4))
        let expected = Self.expectation(file)
        // Only the cases that must end by the clock get 200 ms; the others (memory bombs,
        // errors after heavy work such as filling ctx.shared) get 20 s to reach their own end,
        // also on a machine loaded by the whole suite.
        let timeout = expected == "timeout" ? 200 : 20000
        let work = Binary.temp("hostile-\(name)")
        try? FileManager.default.removeItem(atPath: work)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        try """
        api: 1
        dead_letter: dl.jsonl
        plugins:
          - use: \(Self.dir)/hostile_runner.lua
            config: { case: \(name) }
            timeout_ms: \(timeout)
            memory_mb: 32
            on_error: dead-letter
        """.write(toFile: work + "/p.yaml", atomically: true, encoding: .utf8)
        let r = try await Binary.runOffPool(["run", work + "/p.yaml", "--stats-json", work + "/s.json"],
                               input: "{\"a\":1}\n{\"a\":2}\n", timeout: 60)
        #expect(r.status == 0 || r.status == 1, "\(file): exit \(r.status) (a crash or a signal) \(r.stderr.suffix(300))")
        for line in r.lines {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) is [String: Any], "\(file): not clean JSON on stdout")
        }
        #expect(r.lines.isEmpty, "\(file): a record went through as if nothing happened: \(r.lines.first ?? "")")
        let needle = expected == "timeout" ? "timeout" : expected == "memory" ? "memory" : String(expected.dropFirst(7))
        if r.status == 0 {
            let s = try Binary.stats(work + "/s.json")
            #expect(Binary.balanced(s), "\(file): \(s)")
            let dl = (try? String(contentsOfFile: work + "/dl.jsonl", encoding: .utf8)) ?? ""
            #expect(dl.contains(needle.replacingOccurrences(of: "\"", with: "\\\"")), "\(file): expected '\(needle)' in \(dl.prefix(400))")
        } else {
            #expect(r.stderr.contains(needle), "\(file): expected '\(needle)' in \(r.stderr.suffix(400))")
        }
    }
}
