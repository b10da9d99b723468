import DequeModule

/// What records in flight may hold on the host side (`--host-memory-mb`): the bytes of every
/// record between the reader and the writer, as tapes plus a per-record overhead.
///
/// The reader waits while the records in flight hold more than half the budget (the other
/// half is room for stages that make records bigger); a Lua call whose hand-over (its record
/// and emits) would take the total past the budget fails with a clear error. Each stage
/// settles its batch (what came in leaves, what goes out arrives); the writer releases what
/// it wrote. See docs/reference.md, "Memory".
public final class HostBudget: Sendable {
    /// Bytes a record costs beside its tape: the array and object headers, malloc's rounding.
    /// Measured: 14M empty records emitted in one flush took 1.65 GB of RSS, about 120 bytes
    /// each for a 9-byte tape.
    public static let perRecord = 112

    public let limit: Int
    private struct State {
        var used = 0
        var waiters = Deque<(bytes: Int, resume: CheckedContinuation<Void, Never>)>()
    }
    private let state = Locked(State())

    public init(limit: Int) { self.limit = limit }

    /// Bytes charged now.
    public var used: Int { state.withLock { $0.used } }

    /// Charges `bytes` once the records in flight hold at most half the budget (at once when
    /// nothing is in flight, so one large batch still goes). The reader calls this.
    public func admit(_ bytes: Int) async {
        let now = state.withLock { s -> Bool in
            guard s.waiters.isEmpty, s.used == 0 || s.used + bytes <= limit / 2 else { return false }
            s.used += bytes
            return true
        }
        if now { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resume = state.withLock { s -> Bool in
                if s.waiters.isEmpty, s.used == 0 || s.used + bytes <= limit / 2 {
                    s.used += bytes
                    return true
                }
                s.waiters.append((bytes, c))
                return false
            }
            if resume { c.resume() }
        }
    }

    /// Charges `bytes` when they fit in the budget; false (nothing charged) when they do not.
    public func tryCharge(_ bytes: Int) -> Bool {
        state.withLock { s in
            guard s.used + bytes <= limit else { return false }
            s.used += bytes
            return true
        }
    }

    /// Charges `bytes` while the budget stays at most three quarters full, leaving the rest for
    /// what calls hand over; false (nothing charged) when not. For records in flight in waits.
    public func tryAdmit(_ bytes: Int) -> Bool {
        state.withLock { s in
            guard s.used + bytes <= limit / 4 * 3 else { return false }
            s.used += bytes
            return true
        }
    }

    /// Adds `delta` (negative: releases), and lets waiting readers in when there is room.
    public func adjust(_ delta: Int) {
        guard delta != 0 else { return }
        let ready: [CheckedContinuation<Void, Never>] = state.withLock { s in
            s.used = max(0, s.used + delta)
            var ready: [CheckedContinuation<Void, Never>] = []
            while let first = s.waiters.first, s.used == 0 || s.used + first.bytes <= limit / 2 {
                s.used += first.bytes
                ready.append(s.waiters.removeFirst().resume)
            }
            return ready
        }
        for c in ready { c.resume() }
    }

    /// Lets every waiting reader go (the run is ending).
    public func open() {
        let all = state.withLock { s in
            defer { s.waiters.removeAll() }
            return s.waiters.map(\.resume)
        }
        for c in all { c.resume() }
    }

    /// What `items` hold on the host, as this budget counts it.
    public static func bytes(_ items: [Item]) -> Int { items.reduce(0) { $0 + $1.hostBytes } }
}

extension Item {
    /// What the item holds on the host, as the budget counts it: its tape, or for a record
    /// built in Swift (a dictionary of enums, about three times its tape) three times its
    /// tape's size, plus the per-record overhead.
    public var hostBytes: Int {
        switch payload {
        case .tape(let t): t.bytes.count + HostBudget.perRecord
        case .record(let r): 3 * TapeEncoder.size(of: r) + HostBudget.perRecord
        }
    }
}
