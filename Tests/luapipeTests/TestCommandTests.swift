import Foundation
import Testing

@Suite("luapipe test, end to end")
struct TestCommandTests {
    @Test("passing tests, flush emits included, and expect_error; summary line and exit 0")
    func passing() async throws {
        let r = try await Binary.runOffPool(["test", "testing/counter.lua"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("PASS counter: numbers records and counts them on flush"))
        #expect(r.stdout.contains("PASS counter: refuses a bad record"))
        #expect(r.lines.last == "2 passed, 0 failed")
    }

    @Test("failing tests show the difference by field and exit 1")
    func failing() async throws {
        let r = try await Binary.runOffPool(["test", "testing"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("FAIL wrong: doubles"))
        #expect(r.stdout.contains("output 1: field 'v': expected 5, got 4"), "\(r.stdout)")
        #expect(r.stdout.contains("FAIL wrong: expects an error that never comes"))
        #expect(r.stdout.contains("expected an error containing \"nope\", but the plugin succeeded"))
        #expect(r.lines.last == "3 passed, 2 failed")
    }

    @Test("the example plugins pass their own tests")
    func examples() async throws {
        let r = try await Binary.runOffPool(["test", Binary.packageRoot + "/examples/plugins"])
        #expect(r.status == 0, "\(r.stdout)")
        #expect(r.lines.last == "4 passed, 0 failed")
    }
}

@Suite("luapipe new, end to end")
struct NewCommandTests {
    @Test("a new Lua plugin passes its own test untouched and comes with editor types")
    func scaffold() async throws {
        let dir = Binary.temp("new-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let made = try await Binary.runOffPool(["new", "my-plugin", "--dir", dir])
        #expect(made.status == 0, "\(made.stderr)")
        let tested = try await Binary.runOffPool(["test", dir + "/my-plugin.lua"])
        #expect(tested.status == 0 && tested.lines.last == "1 passed, 0 failed", "\(tested.stdout)")
        let types = try String(contentsOfFile: dir + "/.luapipe-types/luapipe.lua", encoding: .utf8)
        let shipped = try String(contentsOfFile: Binary.packageRoot + "/types/luapipe.lua", encoding: .utf8)
        #expect(types == shipped)
        #expect(FileManager.default.fileExists(atPath: dir + "/.luarc.json"))
        let again = try await Binary.runOffPool(["new", "my-plugin", "--dir", dir])
        #expect(again.status == 2 && again.stderr.contains("exists"))
        let bad = try await Binary.runOffPool(["new", "Bad Name", "--dir", dir])
        #expect(bad.status != 0 && bad.stderr.contains("must match [a-z0-9_-]+"))
    }

    /// Builds a package that depends on this checkout: minutes of compiling (its dependencies, cold).
    @Test("a new Swift plugin package builds, passes its own tests untouched, and runs in its own luapipe",
          .timeLimit(.minutes(35)))  // a cold build of AsyncHTTPClient and NIO on a busy 2-core machine
    func scaffoldSwift() async throws {
        let dir = Binary.temp("new-swift-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }  // its .build is large
        let made = try await Binary.runOffPool(["new", "greet", "--swift", "--dir", dir, "--luapipe", Binary.packageRoot])
        #expect(made.status == 0, "\(made.stderr)")
        let pkg = dir + "/greet"
        let swift = "/usr/bin/env"
        let built = try await Binary.runOffPool(["swift", "build", "--package-path", pkg], timeout: 1200, executable: swift)
        #expect(built.status == 0, "\(built.stdout.suffix(2000))\(built.stderr.suffix(2000))")
        let tested = try await Binary.runOffPool(["swift", "test", "--package-path", pkg], timeout: 600, executable: swift)
        #expect(tested.status == 0 && tested.stdout.contains("2 tests in 1 suite passed"),
                "\(tested.stdout.suffix(2000))\(tested.stderr.suffix(2000))")
        let own = pkg + "/.build/debug/greet-luapipe"
        let ran = try await Binary.runOffPool(["run", "example.yaml", "--input", "example.jsonl"], cwd: pkg, executable: own)
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(ran.lines == [#"{"id":1,"greeting":"hello"}"#, #"{"id":2,"greeting":"hello"}"#])
        let listed = try await Binary.runOffPool(["plugins"], cwd: pkg, executable: own)
        #expect(listed.lines.contains { $0.hasPrefix("greet ") && $0.contains("swift-sync") }, "\(listed.stdout)")
        let clash = try await Binary.runOffPool(["new", "lua-pipe", "--swift", "--dir", dir])
        #expect(clash.status == 2 && clash.stderr.contains("clashes with a module"), "\(clash.stderr)")
        let missing = try await Binary.runOffPool(["new", "other", "--swift", "--dir", dir, "--luapipe", dir + "/nowhere"])
        #expect(missing.status == 2 && missing.stderr.contains("no luapipe package at"), "\(missing.stderr)")
    }
}
