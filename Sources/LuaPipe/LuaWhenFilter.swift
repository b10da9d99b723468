import LuaPipeCore
import LuaRuntime

/// The manifest's `when` for native plugins: the expression compiled once in its own small
/// sandboxed state on a worker thread; a batch is tested in one hop.
public final class LuaWhenFilter: RecordFilter {
    private let confined: ThreadConfined<(LuaState, LuaRef)?>

    public init(expression: String, on worker: WorkerThread) async throws {
        confined = ThreadConfined(nil, on: worker)
        let confined = self.confined
        try await worker.run {
            try confined.withValue { slot in
                let lua = try LuaState(options: .init(memoryLimit: 64 << 20))
                let fn = try lua.load(LuaWhen.chunk(expression), chunkName: "=when")
                slot = (lua, fn)
            }
        }
    }

    /// Checks that an expression compiles (manifest validation); nil when it does.
    @available(*, noasync, message: "loads Lua: run it on a WorkerThread")
    public static func compileError(_ expression: String) -> String? {
        do {
            let lua = try LuaState(options: .init(memoryLimit: 16 << 20))
            _ = try lua.load(LuaWhen.chunk(expression), chunkName: "=when")
            return nil
        } catch {
            return error.message.replacingOccurrences(of: "when:", with: "line ")
        }
    }

    public func test(_ items: [Item]) async throws -> [Bool] {
        let confined = self.confined
        return try await confined.worker.run {
            try confined.withValue { slot in
                guard let (lua, fn) = slot else { return items.map { _ in true } }
                return try items.map { item in
                    let out = try lua.call(fn, arg: item.tape, mode: .truth, passContext: false, timeout: .seconds(1))
                    return out.result == .truthy(true)
                }
            }
        }
    }

    public func close() async {
        let confined = self.confined
        await confined.worker.run { confined.withValue { $0 = nil } }
    }
}

extension String {
    func replacingOccurrences(of a: String, with b: String) -> String {
        guard !a.isEmpty else { return self }
        var out = ""
        var rest = Substring(self)
        while let r = rest.firstRange(of: a) {
            out += rest[..<r.lowerBound] + b
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
