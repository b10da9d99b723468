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
        let args = request.arguments
        let key = args.first?.stringValue ?? ""
        do {
            return try await race(.nanoseconds(left)) {
                switch method {
                case .get:
                    guard let got = try await store.getTape(key) else { return .value(nil) }
                    let (tape, n) = (got.tape, got.charged)
                    if Task.isCancelled {  // the deadline came first: nobody takes the value
                        store.release(n)
                        return .timeout
                    }
                    charged.withLock { $0 += n }
                    return .tape(tape)
                case .set:
                    let value = args.count > 1 && !args[1].isNull ? args[1] : nil
                    try await store.set(key, value)
                    return .value(nil)
                case .incr:
                    let delta = args.count > 1 ? args[1].intValue ?? 1 : 1
                    return .value(.int(try await store.incr(key, by: delta)))
                case .delete:
                    try await store.delete(key)
                    return .value(nil)
                case .keys:
                    let (keys, n) = try await store.chargedKeys()
                    if Task.isCancelled {
                        store.release(n)
                        return .timeout
                    }
                    charged.withLock { $0 += n }
                    return .value(.array(keys.map { .string($0) }))
                }
            } ?? .timeout
        } catch is CancellationError {
            return .timeout
        } catch let e as PipelineError {
            return .error("ctx.shared:\(method.rawValue): \(e.message)")
        } catch {
            return .error("ctx.shared:\(method.rawValue): \(error)")
        }
    }
}
