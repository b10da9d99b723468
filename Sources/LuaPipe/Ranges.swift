/// The documented range of every numeric manifest key and flag (docs/reference.md, "Numbers").
/// A value outside its range is a usage or manifest error (exit 2) before the run starts, so
/// nothing wraps, traps or silently means "no limit".
public enum Ranges {
    /// `--workers` and `instances`.
    public static let workers = 1...256
    /// `concurrency`: records one instance may have in flight at once.
    public static let concurrency = 1...100_000
    /// `--batch-size`: the most records one batch holds.
    public static let batchSize = 1...65_536
    /// `timeout_ms` and `tick_ms`: up to a day.
    public static let milliseconds = 1...86_400_000
    /// `memory_mb`: up to 64 GiB per instance.
    public static let memoryMb = 1...65_536
    /// `max_errors`.
    public static let maxErrors = 1...2_147_483_647
    /// `--host-memory-mb`: what records in flight may hold on the host side, in MiB.
    public static let hostMemoryMb = 16...1_048_576

    /// "1 to 86,400,000", for messages.
    public static func describe(_ r: ClosedRange<Int>) -> String { "\(grouped(r.lowerBound)) to \(grouped(r.upperBound))" }

    /// The message for `value` outside `range` (nil when it is inside).
    public static func check(_ value: Int, _ range: ClosedRange<Int>, _ name: String) -> String? {
        range.contains(value) ? nil : "\(name) must be from \(describe(range)) (got \(grouped(value)))"
    }

    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }
}
