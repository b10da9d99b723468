import LuaPipeCore
import Testing

/// Lines built to make the readers slow: one object with very many keys that is refused only at
/// its end. The C reader refuses it, then the Swift reader parses it again to say why; both
/// must stay linear (scripts/hostile-lines.sh times them near the 64 MiB line limit; a test
/// does not assert time). Here: the message must name the problem and its place.
@Suite("Hostile lines")
struct HostileLineTests {
    /// `{"k00000000":0,...}` of about `bytes` bytes, without its closing brace; and its key count.
    static func wideObject(bytes: Int) -> ([UInt8], Int) {
        var text: [UInt8] = [UInt8(ascii: "{")]
        text.reserveCapacity(bytes + 64)
        var n = 0
        while text.count < bytes {
            if n > 0 { text.append(UInt8(ascii: ",")) }
            let digits = String(n)
            text += Array("\"k\(String(repeating: "0", count: 8 - digits.count))\(digits)\":\(n % 10)".utf8)
            n += 1
        }
        return (text, n)
    }

    static func error(_ text: [UInt8]) -> JSONError? {
        text.withUnsafeBufferPointer { b -> JSONError? in
            do {
                _ = try JSONReader.parseRecord(b)
                return nil
            } catch {
                return error as? JSONError
            }
        }
    }

    @Test("5 MB of keys and a stray byte after the object")
    func trailingByte() throws {
        let (body, n) = Self.wideObject(bytes: 5 << 20)
        #expect(n > 350_000)
        let text = body + Array("}x".utf8)
        let e = try #require(Self.error(text))
        #expect(e.message == "unexpected text after the JSON value")
        #expect(e.offset == text.count - 1)
    }

    @Test("5 MB of keys, the first one repeated at the end")
    func duplicateAtTheEnd() throws {
        let (body, _) = Self.wideObject(bytes: 5 << 20)
        let text = body + Array(#","k00000000":1}"#.utf8)
        let e = try #require(Self.error(text))
        #expect(e.message == #"duplicate key "k00000000""#)
        #expect(e.offset == body.count + 1)  // at the repeat, not the first one
    }

    @Test("a wide object reports its first repeat, also when a syntax error follows it")
    func firstProblemInTextOrder() throws {
        let (body, _) = Self.wideObject(bytes: 200_000)
        let repeated = body + Array(#","k00000007":1,"k00000005":1,"x":tru}"#.utf8)
        let e = try #require(Self.error(repeated))
        #expect(e.message == #"duplicate key "k00000007""#)
        #expect(e.offset == body.count + 1)
        // A syntax error before any repeat is the one reported.
        let broken = body + Array(#","x":tru,"k00000007":1}"#.utf8)
        #expect(try #require(Self.error(broken)).message.hasPrefix("unexpected character"))
        // A repeat inside a nested wide object, before a repeat of the outer one's: the inner.
        let nested = body + Array(#","in":"#.utf8) + body + Array(#","k00000003":1},"k00000001":2}"#.utf8)
        let n = try #require(Self.error(nested))
        #expect(n.message == #"duplicate key "k00000003""#)
    }
}
