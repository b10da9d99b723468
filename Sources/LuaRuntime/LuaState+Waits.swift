internal import CLua
internal import CLuaShim
import LuaPipeCore

#if canImport(Glibc)
import Glibc
#endif

/// What a call waits for (luapipe.sleep, luapipe.http.request, ctx.call, and ctx.shared's
/// methods when the store is outside the process), with its arguments.
public struct WaitRequest: Sendable {
    public enum Kind: Sendable, Equatable {
        case sleep, http, call
        /// A method of ctx.shared; the arguments are its own (key, value or delta).
        case shared(SharedMethod)
    }
    public enum SharedMethod: String, Sendable { case get, set, incr, delete, keys }
    public var kind: Kind
    /// The Lua arguments, as a list.
    public var arguments: [Value]
    /// When the call's deadline passes, in `LuaState.now()` nanoseconds (0: none).
    public var deadline: Int64

    /// The kind of a C wait (LP_WAIT_*).
    static func kind(_ k: Int32) -> Kind {
        switch Int(k) {
        case Int(LP_WAIT_SLEEP): .sleep
        case Int(LP_WAIT_HTTP): .http
        case Int(LP_WAIT_SHARED_GET): .shared(.get)
        case Int(LP_WAIT_SHARED_SET): .shared(.set)
        case Int(LP_WAIT_SHARED_INCR): .shared(.incr)
        case Int(LP_WAIT_SHARED_DELETE): .shared(.delete)
        case Int(LP_WAIT_SHARED_KEYS): .shared(.keys)
        default: .call
        }
    }
}

/// How the host answers a wait.
public enum WaitReply: Sendable {
    /// The wait's result (nil: no value).
    case value(Value?)
    /// The wait's result, already a tape (a value read from a shared store).
    case tape(Tape)
    /// A Lua error with this message (a pcall may catch it).
    case error(String)
    /// The call's deadline passed: the record fails, and no pcall can catch it.
    case timeout
}

/// Performs a wait, blocking the calling thread (calls that are not tasks). Called on the
/// state's own worker thread.
public typealias BlockingWait = (WaitRequest) -> WaitReply

/// One record's call run as a coroutine, so that it may wait without holding its thread.
/// Lives and dies with its `LuaState`, on the state's thread.
public final class LuaTask {
    let pointer: UnsafeMutablePointer<lp_task>
    /// Keeps the call's argument alive while the call runs (it is read lazily).
    var argument: Tape?
    /// The record the call is for (the host's bookkeeping).
    public var recordNumber = 0

    init() {
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: lp_task())
        pointer.pointee.thread_ref = LUA_NOREF
    }

    deinit { pointer.deallocate() }
}

extension LuaState {
    /// What a task did when it came back: ended, or waits for something.
    public enum TaskStep {
        case done(Outcome)
        case waiting(WaitRequest)
    }

    /// The monotonic clock the deadlines of waits use, in nanoseconds.
    public static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    public func makeTask() -> LuaTask { LuaTask() }

    /// Frees a task's coroutine and buffers; it must not be used again.
    public func free(_ task: LuaTask) {
        lp_task_free(L, task.pointer)
        task.argument = nil
    }

    /// Starts `fn(arg, ctx)` as a task. Throws what `call` throws.
    public func start(_ task: LuaTask, _ fn: LuaRef, arg: Tape, mode: Mode, when: LuaRef?, allowEmit: Bool,
                      recordNumber: Int, timeout: Duration?, handOver: ((Int) -> Bool)?) throws(LuaError) -> TaskStep {
        let call = task.pointer.pointer(to: \.call)!
        prepare(call, fn, mode: mode, when: when, passContext: true, allowEmit: allowEmit,
                recordNumber: recordNumber, timeout: timeout)
        task.argument = arg
        let status = arg.bytes.withUnsafeBufferPointer { b in
            // The lazy record keeps its own copy of the tape: the pointer is only read here.
            call.pointee.arg = b.baseAddress
            call.pointee.arg_len = b.count
            defer { call.pointee.arg = nil; call.pointee.arg_len = 0 }
            return lp_task_start(L, task.pointer)
        }
        return try step(task, status, handOver)
    }

    /// Resumes a waiting task with the host's answer.
    public func resume(_ task: LuaTask, with reply: WaitReply, handOver: ((Int) -> Bool)?) throws(LuaError) -> TaskStep {
        Self.write(reply, to: &task.pointer.pointee.reply, status: &task.pointer.pointee.reply_status)
        return try step(task, lp_task_resume(L, task.pointer), handOver)
    }

    private func step(_ task: LuaTask, _ status: Int32, _ handOver: ((Int) -> Bool)?) throws(LuaError) -> TaskStep {
        let call = task.pointer.pointer(to: \.call)!
        switch status {
        case LUA_OK:
            task.argument = nil
            let done = try outcome(of: call, handOver: handOver)
            if call.pointee.out.cap > Int(LP_BUF_KEEP) || call.pointee.emits.cap > Int(LP_BUF_KEEP) { lp_call_trim(L, call) }
            return .done(done)
        case LUA_YIELD:
            let t = task.pointer.pointee
            let kind = WaitRequest.kind(Int32(t.wait_kind))
            let args = Tape(bytes: Array(UnsafeBufferPointer(start: t.request.data, count: t.request.len))).value().arrayValue ?? []
            return .waiting(WaitRequest(kind: kind, arguments: args, deadline: t.deadline_ns))
        default:
            task.argument = nil
            lp_call_trim(L, call)
            throw error(status: status)
        }
    }

    /// Writes a reply into a C buffer the state will count and read.
    static func write(_ reply: WaitReply, to buf: inout lp_buf, status: inout Int32) {
        buf.len = 0
        let bytes: [UInt8]
        switch reply {
        case .value(let v?):
            status = Int32(LP_WAIT_OK)
            bytes = Tape(v).bytes
        case .value(nil):
            status = Int32(LP_WAIT_OK)
            bytes = []
        case .tape(let t):
            status = Int32(LP_WAIT_OK)
            bytes = t.bytes
        case .error(let message):
            status = Int32(LP_WAIT_ERROR)
            bytes = Array(message.utf8)
        case .timeout:
            status = Int32(LP_WAIT_TIMEOUT)
            bytes = []
        }
        if bytes.isEmpty { return }
        if lp_buf_reserve(&buf, bytes.count) != 0 {
            status = Int32(LP_WAIT_MEMORY)
            return
        }
        bytes.withUnsafeBufferPointer { b in (buf.data + buf.len).update(from: b.baseAddress!, count: b.count) }
        buf.len += bytes.count
    }

    /// Sets how calls that are not tasks wait: by blocking their thread in `wait`.
    public func setBlockingWait(_ wait: @escaping BlockingWait) {
        let box = Unmanaged.passRetained(WaitBox(wait))
        waitBox?.release()
        waitBox = box
        lp_set_wait(L, blockingWaitTrampoline, box.toOpaque())
    }
}

/// Holds the blocking wait for the C trampoline.
final class WaitBox {
    let wait: BlockingWait
    init(_ wait: @escaping BlockingWait) { self.wait = wait }
}

let blockingWaitTrampoline: lp_wait_fn = { ctx, kind, request, len, deadline, budget, reply in
    let box = Unmanaged<WaitBox>.fromOpaque(ctx!).takeUnretainedValue()
    let k = WaitRequest.kind(kind)
    let args = Tape(bytes: Array(UnsafeBufferPointer(start: request, count: len))).value().arrayValue ?? []
    let answer = box.wait(WaitRequest(kind: k, arguments: args, deadline: deadline))
    var status: Int32 = 0
    LuaState.write(answer, to: &reply!.pointee, status: &status)
    if status == Int32(LP_WAIT_OK), reply!.pointee.len > budget { return Int32(LP_WAIT_MEMORY) }
    return status
}
