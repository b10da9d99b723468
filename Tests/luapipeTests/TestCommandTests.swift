import Foundation
import Testing

@Suite("luapipe test, end to end")
struct TestCommandTests {
    @Test("passing tests, flush emits included, and expect_error; summary line and exit 0")
    func passing() throws {
        let r = try Binary.run(["test", "testing/counter.lua"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("PASS counter: numbers records and counts them on flush"))
        #expect(r.stdout.contains("PASS counter: refuses a bad record"))
        #expect(r.lines.last == "2 passed, 0 failed")
    }

    @Test("failing tests show the difference by field and exit 1")
    func failing() throws {
        let r = try Binary.run(["test", "testing"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("FAIL wrong: doubles"))
        #expect(r.stdout.contains("output 1: field 'v': expected 5, got 4"), "\(r.stdout)")
        #expect(r.stdout.contains("FAIL wrong: expects an error that never comes"))
        #expect(r.stdout.contains("expected an error containing \"nope\", but the plugin succeeded"))
        #expect(r.lines.last == "3 passed, 2 failed")
    }

    @Test("the example plugins pass their own tests")
    func examples() throws {
        let r = try Binary.run(["test", Binary.packageRoot + "/examples/plugins"])
        #expect(r.status == 0, "\(r.stdout)")
        #expect(r.lines.last == "4 passed, 0 failed")
    }
}

@Suite("luapipe new, end to end")
struct NewCommandTests {
    @Test("a new Lua plugin passes its own test untouched and comes with editor types")
    func scaffold() throws {
        let dir = Binary.temp("new-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let made = try Binary.run(["new", "my-plugin", "--dir", dir])
        #expect(made.status == 0, "\(made.stderr)")
        let tested = try Binary.run(["test", dir + "/my-plugin.lua"])
        #expect(tested.status == 0 && tested.lines.last == "1 passed, 0 failed", "\(tested.stdout)")
        let types = try String(contentsOfFile: dir + "/.luapipe-types/luapipe.lua", encoding: .utf8)
        let shipped = try String(contentsOfFile: Binary.packageRoot + "/types/luapipe.lua", encoding: .utf8)
        #expect(types == shipped)
        #expect(FileManager.default.fileExists(atPath: dir + "/.luarc.json"))
        let again = try Binary.run(["new", "my-plugin", "--dir", dir])
        #expect(again.status == 2 && again.stderr.contains("exists"))
        let bad = try Binary.run(["new", "Bad Name", "--dir", dir])
        #expect(bad.status != 0 && bad.stderr.contains("must match [a-z0-9_-]+"))
    }
}
