internal import CLuaShim
import LuaPipeCore

/// What a Lua state may call back into: the log and the shared store. One per state.
public final class LuaHost: @unchecked Sendable {
    // Safe because the closures are immutable and the store is itself thread-safe.
    public typealias LogHandler = @Sendable (_ level: String, _ message: String) -> Void
    public let log: LogHandler
    public let shared: SharedStore?

    public init(shared: SharedStore? = nil, log: @escaping LogHandler = { _, _ in }) {
        self.shared = shared
        self.log = log
    }
}

// MARK: - Host functions (called from the C trampoline; they never touch the Lua API)

@inline(__always) func hostWrite(_ result: UnsafeMutablePointer<lp_buf>?, _ bytes: [UInt8]) {
    guard let result else { return }
    result.pointee.len = 0
    if bytes.isEmpty { return }
    if lp_buf_reserve(result, bytes.count) != 0 { return }
    bytes.withUnsafeBufferPointer { b in
        (result.pointee.data + result.pointee.len).update(from: b.baseAddress!, count: b.count)
    }
    result.pointee.len += bytes.count
}

@inline(__always) func hostFail(_ result: UnsafeMutablePointer<lp_buf>?, _ message: String) -> Int32 {
    hostWrite(result, Array(message.utf8))
    return -1
}

func hostArgs(_ args: UnsafePointer<UInt8>?, _ len: Int) -> [Value] {
    guard let args, len > 0 else { return [] }
    return Tape(bytes: Array(UnsafeBufferPointer(start: args, count: len))).value().arrayValue ?? []
}

func hostObject(_ ctx: UnsafeMutableRawPointer?) -> LuaHost {
    Unmanaged<LuaHost>.fromOpaque(ctx!).takeUnretainedValue()
}

private func argError(_ n: Int, _ fn: String, _ expected: String, _ got: Value?) -> String {
    "bad argument #\(n) to '\(fn)' (\(expected) expected, got \(got.map { $0.typeName == "null" ? "nil" : $0.typeName } ?? "no value"))"
}

private func keyArg(_ a: [Value], _ fn: String) -> Result<String, HostFailure> {
    guard let k = a.first?.stringValue else { return .failure(HostFailure(argError(1, fn, "string", a.first))) }
    return .success(k)
}

struct HostFailure: Error { let message: String; init(_ m: String) { message = m } }

let hostLog: lp_host_fn = { ctx, args, len, result in
    let a = hostArgs(args, len)
    let level = a.first?.stringValue ?? "info"
    let message = a.count > 1 ? (a[1].stringValue ?? JSONWriter.encode(a[1])) : ""
    hostObject(ctx).log(level, message)
    hostWrite(result, [])
    return 0
}

let hostSharedGet: lp_host_fn = { ctx, args, len, result in
    let a = hostArgs(args, len)
    guard let store = hostObject(ctx).shared else { return hostFail(result, "ctx.shared is not available here") }
    switch keyArg(a, "get") {
    case .failure(let f): return hostFail(result, f.message)
    case .success(let k):
        hostWrite(result, store.get(k).map { Tape($0).bytes } ?? [])
        return 0
    }
}

let hostSharedSet: lp_host_fn = { ctx, args, len, result in
    let a = hostArgs(args, len)
    guard let store = hostObject(ctx).shared else { return hostFail(result, "ctx.shared is not available here") }
    switch keyArg(a, "set") {
    case .failure(let f): return hostFail(result, f.message)
    case .success(let k):
        let v = a.count > 1 ? a[1] : .null
        do {
            try store.set(k, v.isNull ? nil : v)
        } catch {
            return hostFail(result, (error as? PipelineError)?.message ?? "\(error)")
        }
        hostWrite(result, [])
        return 0
    }
}

let hostSharedIncr: lp_host_fn = { ctx, args, len, result in
    let a = hostArgs(args, len)
    guard let store = hostObject(ctx).shared else { return hostFail(result, "ctx.shared is not available here") }
    switch keyArg(a, "incr") {
    case .failure(let f): return hostFail(result, f.message)
    case .success(let k):
        var delta: Int64 = 1
        if a.count > 1, !a[1].isNull {
            guard case .int(let d) = a[1] else { return hostFail(result, argError(2, "incr", "integer", a[1])) }
            delta = d
        }
        do {
            let v = try store.incr(k, by: delta)
            hostWrite(result, Tape(.int(v)).bytes)
            return 0
        } catch {
            return hostFail(result, (error as? PipelineError)?.message ?? "\(error)")
        }
    }
}

let hostSharedDelete: lp_host_fn = { ctx, args, len, result in
    let a = hostArgs(args, len)
    guard let store = hostObject(ctx).shared else { return hostFail(result, "ctx.shared is not available here") }
    switch keyArg(a, "delete") {
    case .failure(let f): return hostFail(result, f.message)
    case .success(let k):
        store.delete(k)
        hostWrite(result, [])
        return 0
    }
}

let hostSharedKeys: lp_host_fn = { ctx, _, _, result in
    guard let store = hostObject(ctx).shared else { return hostFail(result, "ctx.shared is not available here") }
    let keys = store.keys()
    var tape = Tape(.array(keys.map { .string($0) }))
    if keys.isEmpty { tape = Tape(.array([])) }
    hostWrite(result, tape.bytes)
    return 0
}

// MARK: - The JSON codec for luapipe.json

let codecDecode: lp_codec_fn = { input, len, out in
    let bytes = UnsafeBufferPointer(start: input, count: len)
    do {
        let tape = try JSONReader.parseValue(bytes)
        hostWrite(out, tape.bytes)
        return 0
    } catch {
        hostWrite(out, Array("\(error)".utf8))
        return -1
    }
}

let codecEncode: lp_codec_fn = { input, len, out in
    var bytes: [UInt8] = []
    JSONWriter.write(Tape(bytes: Array(UnsafeBufferPointer(start: input, count: len))), to: &bytes)
    hostWrite(out, bytes)
    return 0
}
