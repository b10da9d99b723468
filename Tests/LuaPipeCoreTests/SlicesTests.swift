@testable import LuaPipeCore
import Testing

@Suite("How a batch is split among parallel instances")
struct SlicesTests {
    /// Every batch size up to 300 and a few past the default, against every instance count in
    /// range: the slices are non-empty, contiguous, in order, cover the batch, number at most
    /// the instances, and differ in size by at most one.
    @Test("contiguous, ordered, complete and even for every count and instance number")
    func exhaustive() {
        var bad: [String] = []
        for instances in 1...256 {
            for count in Array(0...300) + [511, 1023, 1024, 1025, 4999, 65_536] {
                let s = StageRunner.slices(count, instances)
                let sizes = s.map(\.count)
                var next = 0
                var ok = s.count <= instances && s.count == min(count, instances)
                for r in s {
                    ok = ok && r.lowerBound == next && !r.isEmpty
                    next = r.upperBound
                }
                ok = ok && next == count && (sizes.max() ?? 0) - (sizes.min() ?? 0) <= 1
                if !ok { bad.append("\(count) over \(instances): \(s)") }
                if bad.count > 5 { break }
            }
        }
        #expect(bad.isEmpty, "\(bad)")
    }
}
