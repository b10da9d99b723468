/// What went wrong with `--metrics`: a value that is not `HOST:PORT` (`address`), or a
/// socket that could not be had (`listen`: a host that does not resolve, a port in use).
public struct MetricsError: Error, CustomStringConvertible {
    public enum Code: Sendable { case address, listen }
    public var code: Code
    public var message: String
    /// The error underneath, when there is one (from SwiftNIO).
    public var cause: (any Error)?

    init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }
}
