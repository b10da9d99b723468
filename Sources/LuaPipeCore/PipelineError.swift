/// The one error type of the pipeline: what happened, where, and what to do.
public struct PipelineError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case usage          // bad arguments
        case manifest       // the manifest is wrong (exit 2)
        case input          // a line that is not a record
        case plugin         // a plugin call failed
        case timeout        // a plugin call ran past timeout_ms
        case memory         // a Lua plugin broke memory_mb
        case setup          // a plugin's setup failed: the run cannot start
        case io             // reading or writing a file
        case cancelled      // the run was interrupted
    }

    public var code: Code
    public var message: String
    /// The plugin instance id, when a plugin is involved.
    public var plugin: String?
    /// "file:line" where known (Lua errors, manifest entries).
    public var location: String?
    /// A Lua traceback, when there is one.
    public var traceback: String?
    public var recordNumber: Int?

    public init(_ code: Code, _ message: String, plugin: String? = nil, location: String? = nil,
                traceback: String? = nil, recordNumber: Int? = nil) {
        self.code = code
        self.message = message
        self.plugin = plugin
        self.location = location
        self.traceback = traceback
        self.recordNumber = recordNumber
    }

    public var description: String {
        var s = ""
        if let plugin { s += "plugin '\(plugin)': " }
        s += message
        if let recordNumber { s += " (record \(recordNumber))" }
        return s
    }
}
