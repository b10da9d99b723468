import CLuaPipeJSON

/// The fast path: the C reader first, the Swift one (the reference) to say why a text is
/// refused.
extension JSONReader {
    /// The C reader (CLuaPipeJSON) accepts exactly what this one accepts, 3-4x faster; this
    /// one runs when it refuses a text, to say what is wrong and where.
    /// Nil when the C reader refuses the text (then `reference...` says why).
    @inline(__always) public static func parseFast(_ bytes: UnsafeBufferPointer<UInt8>, recordOnly: Bool) -> Tape? {
        guard let base = bytes.baseAddress else { return nil }
        defer { if bytes.count > 1 << 17 { lp_json_scratch_trim() } }  // a long line's buffer goes
        var len = 0
        guard let tape = lp_json_parse_scratch(base, bytes.count, recordOnly ? 1 : 0, &len) else { return nil }
        return Tape(bytes: Array(UnsafeBufferPointer(start: tape, count: len)))
    }

    /// Parses one JSON object (a record). Anything else is an error.
    public static func parseRecord(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONError) -> Tape {
        if let t = parseFast(bytes, recordOnly: true) { return t }
        return try referenceParseRecord(bytes)
    }

    /// `parseRecord` for a text that may take long (a lookup row of 63 MiB took 1.7-3 s):
    /// `stop` is asked every 65,536 containers and items, and nil returned once it says so.
    public static func parseRecord(_ bytes: UnsafeBufferPointer<UInt8>,
                                   stoppingWhen stop: () -> Bool) throws(JSONError) -> Tape? {
        guard let base = bytes.baseAddress else { return try parseRecord(bytes) }
        defer { if bytes.count > 1 << 17 { lp_json_scratch_trim() } }
        var len = 0
        var stopped: Int32 = 0
        let tape = withoutActuallyEscaping(stop) { stop in
            var ask = stop
            return withUnsafeMutablePointer(to: &ask) { ctx in
                lp_json_parse_scratch_stoppable(base, bytes.count, 1, &len, { ctx in
                    ctx!.assumingMemoryBound(to: (() -> Bool).self).pointee() ? 1 : 0
                }, ctx, &stopped)
            }
        }
        if stopped != 0 { return nil }
        if let tape { return Tape(bytes: Array(UnsafeBufferPointer(start: tape, count: len))) }
        if stop() { return nil }
        return try referenceParseRecord(bytes)
    }

    /// Parses any JSON value.
    public static func parseValue(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONError) -> Tape {
        if let t = parseFast(bytes, recordOnly: false) { return t }
        return try referenceParseValue(bytes)
    }

    public static func parseRecord(_ text: String) throws(JSONError) -> Tape {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBufferPointer { b in
            Result { () throws(JSONError) in try parseRecord(b) }
        }.get()
    }

    public static func parseValue(_ text: String) throws(JSONError) -> Tape {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBufferPointer { b in
            Result { () throws(JSONError) in try parseValue(b) }
        }.get()
    }
}
