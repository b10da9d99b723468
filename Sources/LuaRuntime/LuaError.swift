/// The one error type of LuaRuntime: what went wrong in Lua, where, and the traceback.
public struct LuaError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case syntax        // the chunk does not compile
        case runtime       // the code raised an error
        case timeout       // the call ran past its deadline (the state should be replaced)
        case interrupted   // the host asked the call to stop (the state should be replaced)
        case memory        // the state ran out of its memory limit (the state should be replaced)
        case contract      // the plugin broke the plugin contract (bad table, bad result)
        case hostMemory    // what the call hands over does not fit the host's budget (the state is fine)
        case waitTimeout   // the deadline passed while the call waited (the state is fine)
        case file          // a plugin file could not be read
    }

    public var code: Code
    /// The message without the traceback, as Lua gave it ("file.lua:12: attempt to ...").
    public var message: String
    /// The plugin (instance id or name), filled in by the layer that knows it.
    public var plugin: String?
    /// The Lua source file and line the message names, when it names one.
    public var file: String?
    public var line: Int?
    public var traceback: String?

    public init(_ code: Code, _ message: String, traceback: String? = nil) {
        self.code = code
        self.message = message
        self.traceback = traceback
        (file, line) = Self.location(in: message)
    }

    /// True when the state that raised this error broke a limit and must be replaced.
    public var brokeLimit: Bool { code == .timeout || code == .interrupted || code == .memory }

    /// Splits what the message handler produced into message and traceback.
    init(status: Int32, raw: String, limit: Int32) {
        var message = raw
        var traceback: String?
        let marker = Array("\nstack traceback:\n".utf8)
        let u = Array(raw.utf8)
        if u.count >= marker.count {
            for i in 0...(u.count - marker.count) where u[i] == 10 && Array(u[i..<i + marker.count]) == marker {
                message = String(decoding: u[0..<i], as: UTF8.self)
                traceback = String(decoding: u[(i + marker.count)...], as: UTF8.self)
                break
            }
        }
        let code: Code
        switch limit {
        case 1: code = .timeout
        case 2: code = .interrupted
        case 3: code = .memory
        case 4: code = .waitTimeout
        default: code = status == 3 /* LUA_ERRSYNTAX */ ? .syntax : .runtime
        }
        if code == .memory, !message.contains("memory") {
            message += " (memory limit reached)"
        }
        self.init(code, message, traceback: traceback)
    }

    /// "path/x.lua:12: boom" -> ("path/x.lua", 12). The first ":<digits>:" ends the chunk name.
    static func location(in message: String) -> (String?, Int?) {
        let u = Array(message.utf8.prefix(4096))
        var i = 0
        while i < u.count {
            if u[i] == UInt8(ascii: ":") {
                var j = i + 1
                var n = 0
                while j < u.count, u[j] >= 48, u[j] <= 57, n < 9 { n = n * 10 + Int(u[j] - 48); j += 1 }
                if j > i + 1, j < u.count, u[j] == UInt8(ascii: ":"), i > 0 {
                    return (String(decoding: u[0..<i], as: UTF8.self), n)
                }
            }
            if u[i] == 10 { break }
            i += 1
        }
        return (nil, nil)
    }

    public var description: String {
        var s = ""
        if let plugin { s += "plugin '\(plugin)': " }
        s += message
        return s
    }
}
