import LuaPipeCore
@testable import LuaRuntime
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Lua runs on a worker thread in tests too, never on the cooperative pool: one per call, so
/// parallel test cases do not queue behind each other.
func withLua<T: Sendable>(_ options: LuaState.Options = .init(memoryLimit: 64 << 20),
                          host: LuaHost = LuaHost(shared: SharedStore()),
                          _ body: @escaping @Sendable (LuaState) throws -> T) async throws -> T {
    let worker = WorkerThread(name: "lua-test")
    defer { worker.shutdown() }
    return try await worker.run {
        let lua = try LuaState(options: options, host: host)
        let result = try body(lua)
        #expect(lua.stackTop == 0, "stack not balanced")
        return result
    }
}

func fixturePath(_ name: String) -> String {
    let here = String(#filePath)
    let dir = here[..<here.lastIndex(of: "/")!]
    return dir + "/Fixtures/" + name
}

/// Runs JSON through a Lua function as `process` would: returns the JSON of the result.
func roundTrip(_ lua: LuaState, _ fnSource: String, _ json: String) throws -> (LuaState.Outcome, String?) {
    let fn = try lua.load("return " + fnSource, chunkName: "=test")
    defer { lua.release(fn) }
    let outcome = try lua.call(fn, arg: try JSONReader.parseRecord(json), mode: .record, allowEmit: true)
    var bytes: [UInt8] = []
    if let out = outcome.output { JSONWriter.write(out, to: &bytes) }
    return (outcome, outcome.output == nil ? nil : String(decoding: bytes, as: UTF8.self))
}

func json(_ t: Tape) -> String {
    var bytes: [UInt8] = []
    JSONWriter.write(t, to: &bytes)
    return String(decoding: bytes, as: UTF8.self)
}
