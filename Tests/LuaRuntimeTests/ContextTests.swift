import LuaPipeCore
@testable import LuaRuntime
import Testing

/// The `ctx` table a call gets (Fixtures/ctx).
@Suite("Plugin context")
struct ContextTests {
    @Test("ctx.record_number is the call's record, and stays after the call")
    func recordNumber() async throws {
        let out = try await withLua { lua -> [String] in
            let fns = try lua.load(file: fixturePath("ctx/record_number.lua"))
            defer { lua.release(fns) }
            let process = lua.refField(fns, "process")!, after = lua.refField(fns, "after")!
            defer { lua.release(process); lua.release(after) }
            var lines: [String] = []
            for n in [7, 8] {
                let o = try lua.call(process, arg: try JSONReader.parseRecord(#"{"a":1}"#), mode: .record, recordNumber: n)
                lines.append(json(o.output!))
            }
            lines.append(json(try lua.call(after, mode: .value).output!))
            return lines
        }
        #expect(out == [#"{"a":1,"n":7}"#, #"{"a":1,"n":8}"#, #"{"last":8}"#])
    }
}
