import DequeModule

/// A bounded, multi-producer single-consumer async channel: `send` suspends while it is full,
/// so memory stays flat whatever the input size. `finish` ends it for the consumer after what
/// was sent; sending to a finished channel is ignored (a late tick, say).
public final class Channel<Element: Sendable>: Sendable {
    private struct State {
        var buffer = Deque<Element>()
        var finished = false
        var receiver: CheckedContinuation<Element?, Never>?
        var senders = Deque<(Element, CheckedContinuation<Void, Never>)>()
    }

    private let state = Locked(State())
    public let capacity: Int

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    public func send(_ element: Element) async {
        if state.withLock({ deliver(element, &$0) }) { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow: Bool = state.withLock { s in
                if deliver(element, &s) { return true }
                s.senders.append((element, c))
                return false
            }
            if resumeNow { c.resume() }
        }
    }

    /// Hands the element to a waiting receiver or the buffer (or drops it when finished);
    /// false when the buffer is full.
    private func deliver(_ element: Element, _ s: inout State) -> Bool {
        if s.finished { return true }
        if let r = s.receiver {
            s.receiver = nil
            r.resume(returning: element)
            return true
        }
        if s.buffer.count < capacity {
            s.buffer.append(element)
            return true
        }
        return false
    }

    /// The next element, or nil once the channel is finished and drained.
    public func receive() async -> Element? {
        if let e = takeNow() { return e }
        return await withCheckedContinuation { (c: CheckedContinuation<Element?, Never>) in
            let immediate: Element?? = state.withLock { s in
                if let e = takeLocked(&s) { return .some(e) }
                if s.finished { return .some(nil) }
                s.receiver = c
                return .none
            }
            if let immediate { c.resume(returning: immediate) }
        }
    }

    private func takeNow() -> Element? { state.withLock { takeLocked(&$0) } }

    private func takeLocked(_ s: inout State) -> Element? {
        guard let e = s.buffer.popFirst() else { return nil }
        if let (pending, c) = s.senders.popFirst() {
            s.buffer.append(pending)
            c.resume()
        }
        return e
    }

    public func finish() {
        state.withLock { s in
            s.finished = true
            if let r = s.receiver, s.buffer.isEmpty {
                s.receiver = nil
                r.resume(returning: nil)
            }
            // Senders still waiting get their elements delivered in order: keep them buffered.
            while let (pending, c) = s.senders.popFirst() {
                s.buffer.append(pending)
                c.resume()
            }
        }
    }

    public var isFinished: Bool { state.withLock { $0.finished } }

    /// True when `receive` would return at once with an element.
    public var hasPending: Bool { state.withLock { !$0.buffer.isEmpty || !$0.senders.isEmpty } }
}
