internal import CLuaShim
internal import CLuaPipeJSON
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
//
// Each gets its arguments as one tape array and reads them in place (no `Value` tree: a
// value for ctx.shared goes to the store as the tape it is), and a budget: the most bytes its
// result may take, what is left of the state's memory limit. Past it, it returns
// LP_HOST_MEMORY, and C marks the call as a memory breach.

extension LuaHost {
    /// The longest log line (`ctx.log.*`, `print`) that reaches the log handler: a longer one
    /// is cut there (at a UTF-8 boundary) and ends in "… (N bytes more)".
    public static let maxLogLine = 64 << 10

    static func logLine(_ bytes: UnsafeRawBufferPointer) -> String {
        if bytes.count <= maxLogLine { return String(decoding: bytes, as: UTF8.self) }
        var cut = maxLogLine
        while cut > 0, bytes[cut] & 0xC0 == 0x80 { cut -= 1 }  // not inside a character
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[..<cut]), as: UTF8.self)
            + "… (\(bytes.count - cut) bytes more)"
    }
}

@inline(__always) func hostWrite(_ result: UnsafeMutablePointer<lp_buf>?, _ bytes: UnsafeRawBufferPointer) {
    guard let result else { return }
    result.pointee.len = 0
    if bytes.isEmpty { return }
    if lp_buf_reserve(result, bytes.count) != 0 { return }
    (result.pointee.data + result.pointee.len).update(from: bytes.bindMemory(to: UInt8.self).baseAddress!, count: bytes.count)
    result.pointee.len += bytes.count
}

@inline(__always) func hostWrite(_ result: UnsafeMutablePointer<lp_buf>?, _ bytes: [UInt8]) {
    bytes.withUnsafeBytes { hostWrite(result, $0) }
}

@inline(__always) func hostFail(_ result: UnsafeMutablePointer<lp_buf>?, _ message: String) -> Int32 {
    hostWrite(result, Array(message.utf8))
    return Int32(LP_HOST_ERROR)
}

/// The error of a result that would pass the state's memory limit.
func hostMemory(_ result: UnsafeMutablePointer<lp_buf>?, _ what: String, _ bytes: Int) -> Int32 {
    hostWrite(result, Array("not enough memory: \(what) (\(bytes >> 10) KiB) would take the plugin past its memory limit (memory_mb)".utf8))
    return Int32(LP_HOST_MEMORY)
}

/// A host function's arguments: a tape array, read in place.
struct HostArgs {
    let p: UnsafeRawBufferPointer
    let count: Int

    init(_ args: UnsafePointer<UInt8>?, _ len: Int) {
        guard let args, len >= 9, args[0] == Tape.Tag.array.rawValue else {
            p = UnsafeRawBufferPointer(start: nil, count: 0)
            count = 0
            return
        }
        p = UnsafeRawBufferPointer(start: args, count: len)
        count = Int(Self.u32(p, 1))
    }

    static func u32(_ p: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(littleEndian: p.loadUnaligned(fromByteOffset: at, as: UInt32.self))
    }

    static func skip(_ p: UnsafeRawBufferPointer, _ at: Int) -> Int {
        switch p[at] {
        case Tape.Tag.int.rawValue, Tape.Tag.double.rawValue: at + 9
        case Tape.Tag.string.rawValue: at + 5 + Int(u32(p, at + 1))
        case Tape.Tag.array.rawValue, Tape.Tag.object.rawValue: at + 9 + Int(u32(p, at + 5))
        default: at + 1
        }
    }

    /// The tape of argument i (0-based), or nil when there are fewer.
    func tape(_ i: Int) -> UnsafeRawBufferPointer? {
        guard i < count else { return nil }
        var at = 9
        for _ in 0..<i { at = Self.skip(p, at) }
        return UnsafeRawBufferPointer(rebasing: p[at..<Self.skip(p, at)])
    }

    func tag(_ i: Int) -> Tape.Tag? { tape(i).flatMap { Tape.Tag(rawValue: $0[0]) } }

    /// The bytes of argument i when it is a string.
    func stringBytes(_ i: Int) -> UnsafeRawBufferPointer? {
        guard let t = tape(i), t[0] == Tape.Tag.string.rawValue else { return nil }
        return UnsafeRawBufferPointer(rebasing: t[5...])
    }

    func string(_ i: Int) -> String? { stringBytes(i).map { String(decoding: $0, as: UTF8.self) } }

    func int(_ i: Int) -> Int64? {
        guard let t = tape(i), t[0] == Tape.Tag.int.rawValue else { return nil }
        return Int64(littleEndian: t.loadUnaligned(fromByteOffset: 1, as: Int64.self))
    }

    /// Absent or null.
    func isNil(_ i: Int) -> Bool { tag(i) == nil || tag(i) == .null }

    /// The type name error messages use (as Lua's: nil for null or no value).
    func typeName(_ i: Int) -> String {
        switch tag(i) {
        case nil: "no value"
        case .null?: "nil"
        case .false?, .true?: "boolean"
        case .int?, .double?: "number"
        case .string?: "string"
        case .array?: "array"
        case .object?: "object"
        }
    }
}

func hostObject(_ ctx: UnsafeMutableRawPointer?) -> LuaHost {
    Unmanaged<LuaHost>.fromOpaque(ctx!).takeUnretainedValue()
}

private func argError(_ n: Int, _ fn: String, _ expected: String, _ a: HostArgs) -> String {
    "bad argument #\(n) to '\(fn)' (\(expected) expected, got \(a.typeName(n - 1)))"
}

private func keyArg(_ a: HostArgs, _ fn: String) -> Result<String, HostFailure> {
    guard let k = a.string(0) else { return .failure(HostFailure(argError(1, fn, "string", a))) }
    return .success(k)
}

struct HostFailure: Error { let message: String; init(_ m: String) { message = m } }

let hostLog: lp_host_fn = { ctx, args, len, _, result in
    let a = HostArgs(args, len)
    let level = a.string(0) ?? "info"
    let message: String
    if let bytes = a.stringBytes(1) {
        message = LuaHost.logLine(bytes)
    } else if let t = a.tape(1) {  // the prelude passes strings; anything else as JSON
        var text: [UInt8] = []
        JSONWriter.write(Tape(bytes: Array(t)), to: &text)
        message = text.withUnsafeBytes { LuaHost.logLine($0) }
    } else {
        message = ""
    }
    hostObject(ctx).log(level, message)
    hostWrite(result, [])
    return 0
}

let hostSharedGet: lp_host_fn = { ctx, args, len, budget, result in
    let a = HostArgs(args, len)
    guard let store = hostObject(ctx).shared else { return hostFail(result, "ctx.shared is not available here") }
    switch keyArg(a, "get") {
    case .failure(let f): return hostFail(result, f.message)
    case .success(let k):
        guard let tape = store.tape(k) else {
            hostWrite(result, [])
            return 0
        }
        if tape.count > budget { return hostMemory(result, "the value of ctx.shared key '\(k.prefix(200))'", tape.count) }
        hostWrite(result, tape)
        return 0
    }
}

let hostSharedSet: lp_host_fn = { ctx, args, len, _, result in
    let a = HostArgs(args, len)
    guard let store = hostObject(ctx).shared else { return hostFail(result, "ctx.shared is not available here") }
    switch keyArg(a, "set") {
    case .failure(let f): return hostFail(result, f.message)
    case .success(let k):
        do {
            try store.set(k, tape: a.isNil(1) ? nil : Array(a.tape(1)!))
        } catch {
            return hostFail(result, (error as? PipelineError)?.message ?? "\(error)")
        }
        hostWrite(result, [])
        return 0
    }
}

let hostSharedIncr: lp_host_fn = { ctx, args, len, _, result in
    let a = HostArgs(args, len)
    guard let store = hostObject(ctx).shared else { return hostFail(result, "ctx.shared is not available here") }
    switch keyArg(a, "incr") {
    case .failure(let f): return hostFail(result, f.message)
    case .success(let k):
        var delta: Int64 = 1
        if !a.isNil(1) {
            guard let d = a.int(1) else { return hostFail(result, argError(2, "incr", "integer", a)) }
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

let hostSharedDelete: lp_host_fn = { ctx, args, len, _, result in
    let a = HostArgs(args, len)
    guard let store = hostObject(ctx).shared else { return hostFail(result, "ctx.shared is not available here") }
    switch keyArg(a, "delete") {
    case .failure(let f): return hostFail(result, f.message)
    case .success(let k):
        store.delete(k)
        hostWrite(result, [])
        return 0
    }
}

let hostSharedKeys: lp_host_fn = { ctx, _, _, budget, result in
    guard let store = hostObject(ctx).shared else { return hostFail(result, "ctx.shared is not available here") }
    let keys = store.keys()
    let size = keys.reduce(9) { $0 + 5 + $1.utf8.count }
    if size > budget { return hostMemory(result, "the list of ctx.shared keys", size) }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(size)
    bytes.append(Tape.Tag.array.rawValue)
    func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { bytes.append(contentsOf: $0) } }
    u32(keys.count)
    u32(size - 9)
    for k in keys {
        bytes.append(Tape.Tag.string.rawValue)
        u32(k.utf8.count)
        bytes.append(contentsOf: k.utf8)
    }
    hostWrite(result, bytes)
    return 0
}

// MARK: - The JSON codec for luapipe.json

/// Runs only when the C reader refused a text: the Swift reader says what is wrong and where.
/// It builds the same tape as the C reader up to the error, which fit the budget.
let codecDecode: lp_codec_fn = { input, len, _, out in
    let bytes = UnsafeBufferPointer(start: input, count: len)
    do {
        let tape = try JSONReader.referenceParseValue(bytes)
        hostWrite(out, tape.bytes)
        return 0
    } catch {
        hostWrite(out, Array("\(error)".utf8))
        return Int32(LP_HOST_ERROR)
    }
}

/// JSONWriter installs the double formatter the C writer uses on its first use.
private let writerReady: Void = {
    var text: [UInt8] = []
    JSONWriter.write(Tape(.double(1)), to: &text)
}()

/// Writes the text straight into `out`: within the budget at the bound (6 bytes per tape
/// byte), else measured first, and refused when even the exact size passes it.
let codecEncode: lp_codec_fn = { input, len, budget, out in
    guard let input, let out else { return Int32(LP_HOST_ERROR) }
    _ = writerReady
    var size = lp_json_text_bound(len)
    if size > budget {
        size = lp_json_text_size(input, len)
        if size > budget { return hostMemory(out, "luapipe.json.encode's text", size) }
    }
    out.pointee.len = 0
    if lp_buf_reserve(out, size) != 0 { return hostMemory(out, "luapipe.json.encode's text", size) }
    out.pointee.len = lp_json_write(input, len, out.pointee.data)
    return 0
}
