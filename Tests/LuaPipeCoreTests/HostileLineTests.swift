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
        var digits = [UInt8](repeating: UInt8(ascii: "0"), count: 8)
        while text.count < bytes {
            if n > 0 { text.append(UInt8(ascii: ",")) }
            text.append(UInt8(ascii: "\""))
            text.append(UInt8(ascii: "k"))
            text.append(contentsOf: digits)
            text.append(UInt8(ascii: "\""))
            text.append(UInt8(ascii: ":"))
            text.append(UInt8(ascii: "0") + UInt8(n % 10))
            n += 1
            var k = 7
            while k >= 0 {  // the next key's digits
                if digits[k] == UInt8(ascii: "9") { digits[k] = UInt8(ascii: "0"); k -= 1 } else { digits[k] += 1; break }
            }
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

    /// Runs on a thread of its own: these take seconds in a debug build, and must not hold one
    /// of the cooperative pool's threads that other tests need.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        let worker = WorkerThread(name: "hostile-line")
        defer { worker.shutdown() }
        return await worker.run(body)
    }

    @Test("5 MB of keys and a stray byte after the object")
    func trailingByte() async throws {
        let (error, length, keys) = await Self.offPool { () -> (JSONError?, Int, Int) in
            let (body, n) = Self.wideObject(bytes: 5 << 20)
            let text = body + Array("}x".utf8)
            return (Self.error(text), text.count, n)
        }
        #expect(keys > 350_000)
        let e = try #require(error)
        #expect(e.message == "unexpected text after the JSON value")
        #expect(e.offset == length - 1)
    }

    @Test("5 MB of keys, the first one repeated at the end")
    func duplicateAtTheEnd() async throws {
        let (error, bodyLength) = await Self.offPool { () -> (JSONError?, Int) in
            let (body, _) = Self.wideObject(bytes: 5 << 20)
            return (Self.error(body + Array(#","k00000000":1}"#.utf8)), body.count)
        }
        let e = try #require(error)
        #expect(e.message == #"duplicate key "k00000000""#)
        #expect(e.offset == bodyLength + 1)  // at the repeat, not the first one
    }

    @Test("a wide object reports its first repeat, also when a syntax error follows it")
    func firstProblemInTextOrder() async throws {
        let (repeated, broken, nested, bodyLength) = await Self.offPool { () -> (JSONError?, JSONError?, JSONError?, Int) in
            let (body, _) = Self.wideObject(bytes: 200_000)
            return (Self.error(body + Array(#","k00000007":1,"k00000005":1,"x":tru}"#.utf8)),
                    Self.error(body + Array(#","x":tru,"k00000007":1}"#.utf8)),
                    Self.error(body + Array(#","in":"#.utf8) + body + Array(#","k00000003":1},"k00000001":2}"#.utf8)),
                    body.count)
        }
        let r = try #require(repeated)
        #expect(r.message == #"duplicate key "k00000007""#)
        #expect(r.offset == bodyLength + 1)
        // A syntax error before any repeat is the one reported.
        #expect(try #require(broken).message.hasPrefix("unexpected character"))
        // A repeat inside a nested wide object, before a repeat of the outer one's: the inner.
        #expect(try #require(nested).message == #"duplicate key "k00000003""#)
    }
}
