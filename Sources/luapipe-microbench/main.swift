// Micro-benchmarks of the Lua runtime's API, run by scripts/bench.sh: the cost of one call of
// an identity Lua function, and of one 10-field record's round trip (tape -> Lua table ->
// plugin -> tape). Runs on a worker thread, like the pipeline does.
import LuaPipe
import LuaPipeCore
import LuaPipeTesting
import LuaRuntime

let worker = WorkerThread(name: "microbench")
let calls = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 2_000_000

func measure(_ label: String, _ n: Int, unit: String, scale: Double, _ body: () throws -> Void) rethrows {
    let clock = ContinuousClock()
    let start = clock.now
    try body()
    let d = clock.now - start
    let nanos = Double(d.components.seconds) * 1e9 + Double(d.components.attoseconds) / 1e9
    let per = nanos / Double(n) / scale
    print("\(label): \(String(Int(per * 100)).dropLast(2) + "." + String(Int(per * 100)).suffix(2)) \(unit) (\(n) iterations)")
}

let record = try! JSONReader.parseRecord(#"{"id":100000,"name":"user_000000","email":"user_000000@example.com","city":"Berlin","age":18,"score":0.25,"balance":0.5,"active":false,"tags":["alpha","beta","gamma"],"count":0}"#)

let done = BlockingBox<Void>()
worker.submit {
    do {
        let lua = try LuaState()
        let identity = try lua.load("return function() end", chunkName: "=identity")
        measure("identity Lua function through LuaState.call", calls, unit: "ns/call", scale: 1) {
            for _ in 0..<calls { _ = try! lua.call(identity, passContext: false) }
        }
        let process = try lua.load("return function(r) end", chunkName: "=process")
        let n = calls / 4
        measure("10-field record round trip (tape -> table -> process -> tape)", n, unit: "µs/record", scale: 1000) {
            for _ in 0..<n { _ = try! lua.call(process, arg: record, mode: .record) }
        }
        let change = try lua.load("return function(r) r.count = r.count + 1; r.city = r.city:upper() end", chunkName: "=change")
        measure("same, with a plugin that changes two fields", n, unit: "µs/record", scale: 1000) {
            for _ in 0..<n { _ = try! lua.call(change, arg: record, mode: .record) }
        }
        var out: [UInt8] = []
        measure("JSON parse + encode of the same record (C reader and writer, no Lua)", n, unit: "µs/record", scale: 1000) {
            let text = Array(#"{"id":100000,"name":"user_000000","email":"user_000000@example.com","city":"Berlin","age":18,"score":0.25,"balance":0.5,"active":false,"tags":["alpha","beta","gamma"],"count":0}"#.utf8)
            for _ in 0..<n {
                out.removeAll(keepingCapacity: true)
                let t = try! text.withUnsafeBufferPointer { try JSONReader.parseRecord($0) }
                JSONWriter.write(t, to: &out)
            }
        }
        done.set(.success(()))
    } catch {
        print("microbench failed: \(error)")
        done.set(.success(()))
    }
}
_ = done.wait()

// The same plugin as Lua, sync Swift and async Swift, each alone in a pipeline over records in
// memory (no JSON, no I/O): what a plugin kind costs per record, crossings included.
final class IncrSync: SyncPlugin {
    func process(_ record: Record, _ context: PluginContext) throws -> Disposition {
        var r = record
        r["count"] = .int((r["count"]?.intValue ?? 0) + 1)
        return .replace(r)
    }
}

final class IncrAsync: Plugin {
    func process(_ record: Record, _ context: PluginContext) async throws -> Disposition {
        var r = record
        r["count"] = .int((r["count"]?.intValue ?? 0) + 1)
        return .replace(r)
    }
}

let kindsRecords = (0..<(calls / 10)).map { _ in record.record()! }
let luaFile = CommandLine.arguments.count > 2 ? CommandLine.arguments[2] : "bench/kinds/incr.lua"
func perRecord(_ label: String, _ body: @escaping @Sendable () async -> PluginHarness.Run) {
    let box = BlockingBox<Duration>()
    Task {
        let start = ContinuousClock.now
        let run = await body()
        if run.error != nil || run.outputs.count != kindsRecords.count {
            print("\(label): failed: \(run.outputs.count) of \(kindsRecords.count) records out, error: \(String(describing: run.error))")
            fatalError("microbench: the pipeline lost records or failed")
        }
        box.set(.success(ContinuousClock.now - start))
    }
    let d = try! box.wait().get()
    let us = (Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12) / Double(kindsRecords.count)
    print("\(label): \(String(Int(us * 100)).dropLast(2) + "." + String(Int(us * 100)).suffix(2)) µs/record (\(kindsRecords.count) records)")
}
perRecord("Lua plugin in a pipeline") { await PluginHarness.run(lua: luaFile, records: kindsRecords) }
perRecord("sync Swift plugin in a pipeline") { await PluginHarness.run(sync: { _ in IncrSync() }, records: kindsRecords) }
perRecord("async Swift plugin in a pipeline (timeout race per record)") { await PluginHarness.run({ _ in IncrAsync() }, records: kindsRecords) }
