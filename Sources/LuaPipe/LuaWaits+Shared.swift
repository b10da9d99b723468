import LuaPipeCore
import LuaRuntime

/// ctx.shared's methods when the run's store is outside the process (`shared: redis://...`):
/// each is a wait, answered here from `context.store`, within the call's deadline.
extension LuaWaits {
    /// Answers one method. `charged` gets the host budget a read value or key list holds
    /// (given back by the caller once the answer is in the state).
    static func shared(_ method: WaitRequest.SharedMethod, _ request: WaitRequest, _ context: PluginContext,
                       _ charged: Locked<Int>) async -> WaitReply {
        guard let store = context.store as? any RemoteSharedStore else {
            return .error("ctx.shared:\(method.rawValue): the run's shared store is in this process")
        }
        let left = request.deadline > 0 ? request.deadline - LuaState.now() : Int64.max
        if left <= 0 { return .timeout }
        // The store enforces the deadline itself (one timer for all its calls): no race of
        // tasks per call, which halved the records per second.
        let deadline = request.deadline > 0 ? ContinuousClock.now + .nanoseconds(left) : nil
        let args = request.arguments
        let key = args.first?.stringValue ?? ""
        let call: SharedCall = switch method {
        case .get: .get(key)
        case .set: .set(key, args.count > 1 && !args[1].isNull ? args[1] : nil)
        case .incr: .incr(key, by: args.count > 1 ? args[1].intValue ?? 1 : 1)
        case .delete: .delete(key)
        case .keys: .keys
        }
        do {
            let answer = try await store.perform(call, until: deadline)
            switch answer {
            case .none: return .value(nil)
            case .integer(let n): return .value(.int(n))
            case .value(let tape, let n):
                charged.withLock { $0 += n }
                return .tape(tape)
            case .keys(let keys, let n):
                charged.withLock { $0 += n }
                return .value(.array(keys.map { .string($0) }))
            }
        } catch is CancellationError {
            return .timeout
        } catch let e as PipelineError {
            return e.code == .timeout ? .timeout : .error("ctx.shared:\(method.rawValue): \(e.message)")
        } catch {
            return .error("ctx.shared:\(method.rawValue): \(error)")
        }
    }
}
