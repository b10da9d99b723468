/// Answers posted from any task, taken all at once by one consumer.
public final class Mailbox<T: Sendable>: Sendable {
    private let state = Locked<(items: [T], waiter: CheckedContinuation<[T], Never>?)>(([], nil))

    public init() {}

    public func post(_ item: T) {
        let waiter: CheckedContinuation<[T], Never>? = state.withLock { s in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.items.append(item)
            return nil
        }
        waiter?.resume(returning: [item])
    }

    /// Everything posted so far; waits for one item when there is none.
    public func take() async -> [T] {
        await withCheckedContinuation { (c: CheckedContinuation<[T], Never>) in
            let ready: [T]? = state.withLock { s in
                if s.items.isEmpty {
                    s.waiter = c
                    return nil
                }
                defer { s.items = [] }
                return s.items
            }
            if let ready { c.resume(returning: ready) }
        }
    }
}
