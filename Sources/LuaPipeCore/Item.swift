/// A record in flight, with the number of the input record it stems from.
///
/// It carries whichever form the last stage made: a `Tape` (from the reader or a Lua plugin)
/// or a `Record` (from a native plugin), and converts only when a stage needs the other.
public struct Item: Sendable {
    public enum Payload: Sendable {
        case tape(Tape)
        case record(Record)
    }

    /// 1-based position of the input record this one stems from (0: from tick or flush).
    public var number: Int
    public var payload: Payload

    public init(number: Int, record: Record) {
        self.number = number
        payload = .record(record)
    }

    public init(number: Int, tape: Tape) {
        self.number = number
        payload = .tape(tape)
    }

    public var record: Record {
        switch payload {
        case .record(let r): r
        case .tape(let t): t.record() ?? Record()
        }
    }

    public var tape: Tape {
        switch payload {
        case .tape(let t): t
        case .record(let r): Tape(r)
        }
    }

    /// Appends the JSON text of the record.
    public func writeJSON(to out: inout [UInt8]) {
        switch payload {
        case .tape(let t): JSONWriter.write(t, to: &out)
        case .record(let r): JSONWriter.write(Tape(r), to: &out)
        }
    }
}
