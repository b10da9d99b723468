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
