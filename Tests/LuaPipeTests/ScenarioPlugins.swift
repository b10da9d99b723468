import LuaPipe
import LuaPipeCore

#if canImport(Glibc)
import Glibc
#endif

/// The scenario plugin as a synchronous Swift plugin (same behaviour as plugins/scenario.lua).
final class ScenarioSync: SyncPlugin {
    var id = ""
    func setup(_ context: PluginContext) throws {
        precondition(WorkerThread.onWorkerThread, "a sync plugin ran off the worker threads")
        id = context.info.id
        try context.shared.set("setup:" + id, .int(try context.shared.incr("clock", by: 1)))
    }

    func process(_ record: Record, _ context: PluginContext) throws -> Disposition {
        precondition(WorkerThread.onWorkerThread, "a sync plugin ran off the worker threads")
        switch record["action"]?.stringValue {
        case "drop": return .drop
        case "replace": return .replace(["n": record["n"] ?? .null, "replaced": true])  // Lua writes new records with sorted keys
        case "fail": throw PipelineError(.plugin, "boom at \(record["n"]?.intValue.map(String.init) ?? "nil")")
        case "emit":
            context.emit(["from": record["n"] ?? .null, "i": 1])
            context.emit(["from": record["n"] ?? .null, "i": 2])
        default: break
        }
        var r = record
        r["seen_" + id] = true
        _ = try context.shared.incr("seen", by: 1)
        _ = try context.shared.incr("seen:" + id, by: 1)
        return .replace(r)
    }

    func flush(_ context: PluginContext) throws {
        context.emit(["flushed": .string(id), "seen": context.shared.get("seen:" + id) ?? .null])
    }

    func teardown(_ context: PluginContext) {
        try? context.shared.set("teardown:" + id, .int((try? context.shared.incr("clock", by: 1)) ?? -1))
    }
}

/// The scenario plugin as an async Swift plugin.
final class ScenarioAsync: Plugin {
    var id = ""
    func setup(_ context: PluginContext) async throws {
        id = context.info.id
        try context.shared.set("setup:" + id, .int(try context.shared.incr("clock", by: 1)))
    }

    func process(_ record: Record, _ context: PluginContext) async throws -> Disposition {
        await Task.yield()  // a real suspension point: this one is async for real
        switch record["action"]?.stringValue {
        case "drop": return .drop
        case "replace": return .replace(["n": record["n"] ?? .null, "replaced": true])  // Lua writes new records with sorted keys
        case "fail": throw PipelineError(.plugin, "boom at \(record["n"]?.intValue.map(String.init) ?? "nil")")
        case "emit":
            context.emit(["from": record["n"] ?? .null, "i": 1])
            context.emit(["from": record["n"] ?? .null, "i": 2])
        default: break
        }
        var r = record
        r["seen_" + id] = true
        _ = try context.shared.incr("seen", by: 1)
        _ = try context.shared.incr("seen:" + id, by: 1)
        return .replace(r)
    }

    func flush(_ context: PluginContext) async throws {
        context.emit(["flushed": .string(id), "seen": context.shared.get("seen:" + id) ?? .null])
    }

    func teardown(_ context: PluginContext) async {
        try? context.shared.set("teardown:" + id, .int((try? context.shared.incr("clock", by: 1)) ?? -1))
    }
}

/// Where each Sleeper call ran: true for a luapipe worker thread.
let sleeperThreads = Locked<[Bool]>([])

/// A sync plugin that blocks its thread for `ms` per record and notes where it ran.
final class Sleeper: SyncPlugin {
    func process(_ record: Record, _ context: PluginContext) throws -> Disposition {
        sleeperThreads.withLock { $0.append(WorkerThread.onWorkerThread) }
        usleep(UInt32((record["ms"]?.intValue ?? 100) * 1000))
        return .pass
    }
}

/// Emits a record on every tick (same as plugins/ticker.lua).
final class TickerSync: SyncPlugin {
    var ticks = 0
    func process(_ record: Record, _ context: PluginContext) throws -> Disposition { .pass }
    func tick(_ context: PluginContext) throws {
        ticks += 1
        context.emit(["tick": .int(Int64(ticks))])
    }
}

final class TickerAsync: Plugin {
    var ticks = 0
    func process(_ record: Record, _ context: PluginContext) async throws -> Disposition { .pass }
    func tick(_ context: PluginContext) async throws {
        ticks += 1
        context.emit(["tick": .int(Int64(ticks))])
    }
}
