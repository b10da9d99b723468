import Foundation

/// A redis-server of the test's own on a free loopback port, stopped with the object.
/// (scripts/test.sh installs redis-server through `need_redis`; the end-to-end suite has a
/// fuller helper of the same name in luapipeTests.)
final class RedisServer: @unchecked Sendable {
    // Safe because a test drives its server from one task at a time.
    let port: Int
    private let process = Process()

    init() throws {
        port = Self.freePort()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["redis-server", "--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if (try? cli(["PING"])) == "PONG" { return }
            usleep(50_000)
        }
        throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "redis-server on port \(port) did not answer"])
    }

    deinit {
        kill(process.processIdentifier, SIGKILL)
        kill(process.processIdentifier, SIGCONT)  // a paused one too
        process.waitUntilExit()
    }

    /// Starts one on a thread of its own: waiting for it must not hold a cooperative thread.
    static func start() async throws -> RedisServer {
        try await withCheckedThrowingContinuation { c in Thread { c.resume(with: Result { try RedisServer() }) }.start() }
    }

    var url: String { "redis://127.0.0.1:\(port)" }

    /// SIGSTOP / SIGCONT: a server that holds its connections and answers nothing.
    func pause() { kill(process.processIdentifier, SIGSTOP) }
    func resume() { kill(process.processIdentifier, SIGCONT) }

    /// redis-cli --raw, its output trimmed.
    @discardableResult
    func cli(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["redis-cli", "-p", "\(port)", "--raw"] + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A port nothing listens on: bound to port 0, read back, closed.
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
