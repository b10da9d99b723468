internal import CLua
internal import CLuaShim
import LuaPipeCore

#if canImport(Glibc)
import Glibc
#endif

/// A registry reference to a Lua value held by one `LuaState`.
public struct LuaRef: Hashable, Sendable {
    let raw: Int32
}

/// One sandboxed Lua 5.4 state: its own globals, its own memory limit, its own hook.
///
/// - Important: not thread-safe and not Sendable. Create it, use it and let it go on one
///   thread (a `WorkerThread`, through `ThreadConfined`); it closes its `lua_State` in deinit.
///   Every call is blocking and runs protected: a Lua error comes back as a `LuaError`.
public final class LuaState {
    /// What one call produced.
    public struct Outcome: Sendable {
        public enum Result: Equatable, Sendable { case pass, replace, drop, value, skipped, truthy(Bool), none }
        public var result: Result
        /// The record (pass: as changed in place; replace: the new one) or the value.
        public var output: Tape?
        /// Records the call emitted, in order.
        public var emits: [Tape]
    }

    /// How a call's first result is read.
    public enum Mode: Sendable { case ignore, record, value, truth }

    let L: OpaquePointer
    private let hostRef: Int32
    /// The `ctx` table every plugin function receives.
    public let ctx: LuaRef
    private let host: LuaHost
    /// The call block handed to C: allocated once, and reached through a pointer, so no
    /// access to it pays Swift's exclusivity check.
    private let call: UnsafeMutablePointer<lp_call> = {
        let p = UnsafeMutablePointer<lp_call>.allocate(capacity: 1)
        p.initialize(to: lp_call())
        return p
    }()

    /// The blocking wait the C side calls (setBlockingWait), kept alive with the state.
    var waitBox: Unmanaged<WaitBox>?

    static let codecInstalled: Bool = {
        lp_set_codec(codecDecode, codecEncode)
        return true
    }()

    /// A handle other threads may use to stop a running call.
    public struct Interrupt: @unchecked Sendable {
        // Safe because lp_ctl_interrupt only stores to an atomic.
        let ctl: OpaquePointer
        public func callAsFunction() { lp_ctl_interrupt(ctl) }
    }

    public private(set) lazy var interrupt = Interrupt(ctl: lp_ctl_of(L))

    public init(options: Options = Options(), host: LuaHost = LuaHost()) throws(LuaError) {
        _ = Self.codecInstalled
        guard let L = lp_newstate(options.memoryLimit) else {
            throw LuaError(.memory, "cannot create a Lua state")
        }
        self.L = L
        self.host = host
        lp_set_hook_count(L, Int32(options.hookCount))
        var opts = lp_sandbox_options()
        opts.allow_io = options.allowIO ? 1 : 0
        opts.allow_os = options.allowOS ? 1 : 0
        opts.shared_waits = options.sharedWaits ? 1 : 0
        let status: Int32 = options.root.map { root in
            root.withCString { r in
                opts.root = r
                return lp_open_sandbox(L, &opts)
            }
        } ?? lp_open_sandbox(L, &opts)
        if status != LUA_OK {
            let message = Self.popMessage(L)
            lp_close(L)
            throw LuaError(.memory, "cannot set up the Lua sandbox: \(message)")
        }
        // [host, ctx]
        let ctxRef = lp_ref(L)
        hostRef = lp_ref(L)
        ctx = LuaRef(raw: ctxRef)
        let hostPtr = Unmanaged.passUnretained(host).toOpaque()
        let fns: [(String, lp_host_fn)] = [
            ("log", hostLog), ("shared_get", hostSharedGet), ("shared_set", hostSharedSet),
            ("shared_incr", hostSharedIncr), ("shared_delete", hostSharedDelete), ("shared_keys", hostSharedKeys),
        ]
        for (name, fn) in fns where lp_set_host(L, hostRef, name, fn, hostPtr) != LUA_OK {
            let message = Self.popMessage(L)
            lp_close(L)
            throw LuaError(.memory, "cannot set up the Lua host functions: \(message)")
        }
    }

    deinit {
        lp_buf_free(&call.pointee.out)
        lp_buf_free(&call.pointee.emits)
        call.deallocate()
        lp_close(L)
        waitBox?.release()
    }

    static func popMessage(_ L: OpaquePointer) -> String {
        var len = 0
        var message = "unknown error"
        if lua_type(L, -1) == LUA_TSTRING, let p = lua_tolstring(L, -1, &len) {
            message = p.withMemoryRebound(to: UInt8.self, capacity: len) {
                String(decoding: UnsafeBufferPointer(start: $0, count: len), as: UTF8.self)
            }
        }
        lua_settop(L, -2)
        return message
    }

    func error(status: Int32) -> LuaError {
        let raw = Self.popMessage(L)
        return LuaError(status: status, raw: raw, limit: lp_limit_hit(L))
    }

    // MARK: State

    /// Bytes the state holds now.
    public var memoryUsed: Int { lp_mem_used(L) }
    public var memoryLimit: Int {
        get { lp_mem_limit(L) }
        set { lp_set_mem_limit(L, newValue) }
    }
    /// The Lua stack height; 0 between calls (tests check it stays balanced).
    public var stackTop: Int { Int(lua_gettop(L)) }

    public func clearInterrupt() { lp_ctl_clear_interrupt(lp_ctl_of(L)) }

    // MARK: Loading

    /// Runs a chunk (text mode only) and keeps its first result. `chunkName` is what error
    /// messages name: "@path" for a file.
    public func load(_ code: [UInt8], chunkName: String, timeout: Duration? = nil) throws(LuaError) -> LuaRef {
        let status = code.withUnsafeBufferPointer { b in
            b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(b.count, 1)) { p in
                lp_dochunk(L, p, b.count, chunkName, 1, Self.nanos(timeout))
            }
        }
        if status != LUA_OK { throw error(status: status) }
        return LuaRef(raw: lp_ref(L))
    }

    public func load(_ code: String, chunkName: String, timeout: Duration? = nil) throws(LuaError) -> LuaRef {
        try load(Array(code.utf8), chunkName: chunkName, timeout: timeout)
    }

    /// Runs a plugin file and keeps what it returns.
    public func load(file path: String, timeout: Duration? = nil) throws(LuaError) -> LuaRef {
        let bytes = try Self.readSource(path)
        return try load(bytes, chunkName: "@" + path, timeout: timeout)
    }

    /// The largest plugin file luapipe reads; `require` has the same limit (LP_MAX_SOURCE_BYTES).
    public static let maxSourceBytes = 16 << 20

    /// Reads a plugin file: a regular file of at most `maxSourceBytes`. It is opened without
    /// blocking (a FIFO would hold the thread for ever) and checked once open (a path checked
    /// before could be swapped), and never read past the limit (a sparse file can be huge).
    public static func readSource(_ path: String) throws(LuaError) -> [UInt8] {
        do {
            return try RegularFile.read(path, limit: maxSourceBytes, what: "plugin file")
        } catch {
            throw LuaError(.file, error.message)
        }
    }

    /// `readSource` for callers that only need the bytes (tests, tools): nil on any failure.
    public static func readFile(_ path: String) -> [UInt8]? {
        try? readSource(path)
    }

    public func release(_ ref: LuaRef) { lp_unref(L, ref.raw) }

    // MARK: Fields of a table held by a ref (raw access: no metamethods run)

    public enum FieldType: Equatable { case none, boolean, number, string, table, function, other }

    public func fieldType(_ ref: LuaRef, _ name: String) -> FieldType {
        withField(ref, name) { t in
            switch t {
            case LUA_TNIL: .none
            case LUA_TBOOLEAN: .boolean
            case LUA_TNUMBER: .number
            case LUA_TSTRING: .string
            case LUA_TTABLE: .table
            case LUA_TFUNCTION: .function
            default: .other
            }
        }
    }

    /// The Lua type name of a field ("nil", "number", ...), for error messages.
    public func fieldTypeName(_ ref: LuaRef, _ name: String) -> String {
        withField(ref, name) { t in String(cString: lua_typename(L, t)) }
    }

    public func stringField(_ ref: LuaRef, _ name: String) -> String? {
        withField(ref, name) { t in
            guard t == LUA_TSTRING else { return nil }
            var len = 0
            guard let p = lua_tolstring(L, -1, &len) else { return nil }
            return p.withMemoryRebound(to: UInt8.self, capacity: len) {
                String(decoding: UnsafeBufferPointer(start: $0, count: len), as: UTF8.self)
            }
        }
    }

    public func integerField(_ ref: LuaRef, _ name: String) -> Int64? {
        withField(ref, name) { t in
            var isNum: Int32 = 0
            let v = lua_tointegerx(L, -1, &isNum)
            return t == LUA_TNUMBER && isNum != 0 ? Int64(v) : nil
        }
    }

    public func boolField(_ ref: LuaRef, _ name: String) -> Bool? {
        withField(ref, name) { t in t == LUA_TBOOLEAN ? lua_toboolean(L, -1) != 0 : nil }
    }

    /// A ref to the field's value (a function, a table), or nil when the field is nil.
    public func refField(_ ref: LuaRef, _ name: String) -> LuaRef? {
        lp_getref(L, ref.raw)
        defer { lua_settop(L, -2) }
        guard lua_type(L, -1) == LUA_TTABLE else { return nil }
        if lp_rawgetfield(L, -1, name) == LUA_TNIL {
            lua_settop(L, -2)
            return nil
        }
        return LuaRef(raw: lp_ref(L))
    }

    /// The field's value as a tape (data only: functions and the like are an error).
    public func tapeField(_ ref: LuaRef, _ name: String) throws(LuaError) -> Tape? {
        lp_getref(L, ref.raw)
        defer { lua_settop(L, -2) }
        guard lua_type(L, -1) == LUA_TTABLE else { return nil }
        if lp_rawgetfield(L, -1, name) == LUA_TNIL {
            lua_settop(L, -2)
            return nil
        }
        var buf = lp_buf()
        defer { lp_buf_release(L, &buf) }  // it was counted in the state's memory as it grew
        let status = lp_to_tape(L, -1, &buf)
        if status != LUA_OK {
            let e = error(status: status)
            lua_settop(L, -2)
            throw LuaError(.contract, "field '\(name)': \(e.message)")
        }
        lua_settop(L, -2)
        return Tape(bytes: Array(UnsafeBufferPointer(start: buf.data, count: buf.len)))
    }

    /// The type of the value a ref holds.
    public func type(of ref: LuaRef) -> FieldType {
        lp_getref(L, ref.raw)
        defer { lua_settop(L, -2) }
        switch lua_type(L, -1) {
        case LUA_TTABLE: return .table
        case LUA_TFUNCTION: return .function
        case LUA_TNIL: return .none
        default: return .other
        }
    }

    private func withField<T>(_ ref: LuaRef, _ name: String, _ body: (Int32) -> T) -> T {
        lp_getref(L, ref.raw)
        guard lua_type(L, -1) == LUA_TTABLE else {
            lua_settop(L, -2)
            return body(LUA_TNIL)
        }
        let t = lp_rawgetfield(L, -1, name)
        let r = body(t)
        lua_settop(L, -3)
        return r
    }

    /// Sets `ctx[name]` to a value.
    public func setContext(_ name: String, _ value: Tape) throws(LuaError) {
        let status = value.bytes.withUnsafeBufferPointer { b in
            lp_set_value(L, ctx.raw, name, b.baseAddress, b.count)
        }
        if status != LUA_OK { throw error(status: status) }
    }

    // MARK: Calls

    static func nanos(_ d: Duration?) -> Int64 {
        guard let d else { return 0 }
        let (s, a) = d.components
        return s * 1_000_000_000 + a / 1_000_000_000
    }

    /// Calls `fn(arg?, ctx?)` protected, with a deadline, and reads the result per `mode`.
    /// - Parameters:
    ///   - when: a predicate called with the record first; false or nil skips the call.
    ///   - passContext: pass the `ctx` table as the last argument.
    ///   - handOver: asked, before any of it is copied to Swift, whether the host may take
    ///     what the call produced (its size as `HostBudget` counts it); no: the call fails
    ///     with a `.hostMemory` error.
    public func call(_ fn: LuaRef, arg: Tape? = nil, mode: Mode = .ignore, when: LuaRef? = nil,
                     passContext: Bool = true, allowEmit: Bool = false, recordNumber: Int = 0,
                     timeout: Duration? = nil, handOver: ((Int) -> Bool)? = nil) throws(LuaError) -> Outcome {
        prepare(call, fn, mode: mode, when: when, passContext: passContext, allowEmit: allowEmit,
                recordNumber: recordNumber, timeout: timeout)
        let status: Int32
        if let arg {
            status = arg.bytes.withUnsafeBufferPointer { b in
                call.pointee.arg = b.baseAddress
                call.pointee.arg_len = b.count
                defer { call.pointee.arg = nil; call.pointee.arg_len = 0 }
                return lp_run(L, call)
            }
        } else {
            call.pointee.arg = nil
            call.pointee.arg_len = 0
            status = lp_run(L, call)
        }
        // After the results are copied: buffers past 1 MiB go (the scratch buffers trim
        // themselves after each use; a failed call may have left one large).
        let trim = status != LUA_OK || call.pointee.out.cap > Int(LP_BUF_KEEP) || call.pointee.emits.cap > Int(LP_BUF_KEEP)
        defer { if trim { lp_call_trim(L, call) } }
        if status != LUA_OK { throw error(status: status) }
        return try outcome(of: call, handOver: handOver)
    }

    /// Fills a call block for `fn` (everything but the argument).
    func prepare(_ call: UnsafeMutablePointer<lp_call>, _ fn: LuaRef, mode: Mode, when: LuaRef?, passContext: Bool,
                 allowEmit: Bool, recordNumber: Int, timeout: Duration?) {
        call.pointee.fn_ref = fn.raw
        call.pointee.ctx_ref = passContext ? ctx.raw : LUA_NOREF
        call.pointee.when_ref = when?.raw ?? LUA_NOREF
        call.pointee.allow_emit = allowEmit ? 1 : 0
        call.pointee.record_number = Int64(recordNumber)
        call.pointee.timeout_ns = Self.nanos(timeout)
        switch mode {
        case .ignore: call.pointee.mode = Int32(LP_MODE_IGNORE)
        case .record: call.pointee.mode = Int32(LP_MODE_RECORD)
        case .value: call.pointee.mode = Int32(LP_MODE_VALUE)
        case .truth: call.pointee.mode = Int32(LP_MODE_TRUTH)
        }
    }

    /// What a finished call produced: asks `handOver` first whether the host may take it.
    func outcome(of call: UnsafeMutablePointer<lp_call>, handOver: ((Int) -> Bool)?) throws(LuaError) -> Outcome {
        if let handOver {
            let (out, emits, count) = (call.pointee.out.len, call.pointee.emits.len, Int(call.pointee.emit_count))
            let bytes = out + emits + (count + (out > 0 ? 1 : 0)) * HostBudget.perRecord
            if bytes > 0, !handOver(bytes) {
                throw LuaError(.hostMemory, "not enough host memory: the call hands over \(bytes >> 10) KiB (\(count) emitted records) "
                                          + "while the records in flight fill the host budget (--host-memory-mb)")
            }
        }
        var outcome = Outcome(result: .none, output: nil, emits: [])
        switch Int(call.pointee.result) {
        case Int(LP_RESULT_PASS): outcome.result = .pass
        case Int(LP_RESULT_REPLACE): outcome.result = .replace
        case Int(LP_RESULT_DROP): outcome.result = .drop
        case Int(LP_RESULT_VALUE): outcome.result = .value
        case Int(LP_RESULT_SKIPPED): outcome.result = .skipped
        case Int(LP_RESULT_TRUE): outcome.result = .truthy(true)
        case Int(LP_RESULT_FALSE): outcome.result = .truthy(false)
        default: outcome.result = .none
        }
        if call.pointee.out.len > 0 {
            outcome.output = Tape(bytes: Array(UnsafeBufferPointer(start: call.pointee.out.data, count: call.pointee.out.len)))
        }
        if call.pointee.emit_count > 0 {
            outcome.emits = Self.split(UnsafeBufferPointer(start: call.pointee.emits.data, count: call.pointee.emits.len))
        }
        return outcome
    }

    /// Splits concatenated record tapes (each: OBJECT tag, u32 count, u32 size, contents).
    static func split(_ b: UnsafeBufferPointer<UInt8>) -> [Tape] {
        var tapes: [Tape] = []
        var i = 0
        while i + 9 <= b.count {
            let size = Int(UInt32(littleEndian: UnsafeRawBufferPointer(b).loadUnaligned(fromByteOffset: i + 5, as: UInt32.self)))
            tapes.append(Tape(bytes: Array(b[i..<i + 9 + size])))
            i += 9 + size
        }
        return tapes
    }
}
