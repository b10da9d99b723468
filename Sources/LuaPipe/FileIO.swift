import LuaPipeCore

#if canImport(Glibc)
import Glibc
#endif

/// Small blocking file helpers. Call them on a worker thread.
public enum FileIO {
    public static func readAll(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { return out }
            out.append(contentsOf: buf[0..<n])
        }
    }

    /// Reads a whole regular file of at most `limit` bytes. It is opened without blocking (a
    /// FIFO cannot hold the thread), checked after opening (the path cannot change in
    /// between), and read to its end. Throws `PipelineError(.io)` saying what is wrong.
    public static func readRegular(_ path: String, limit: Int, what: String) throws(PipelineError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw PipelineError(.io, "cannot read the \(what) \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw PipelineError(.io, "the \(what) \(path) is not a regular file")
        }
        guard st.st_size <= limit else {
            throw PipelineError(.io, "the \(what) \(path) has \(st.st_size) bytes; the most it may have is \(limit >> 20) MiB")
        }
        var out: [UInt8] = []
        out.reserveCapacity(Int(st.st_size))
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw PipelineError(.io, "cannot read the \(what) \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { return out }
            out.append(contentsOf: buf[0..<n])
            if out.count > limit { throw PipelineError(.io, "the \(what) \(path) grew past \(limit >> 20) MiB while it was read") }
        }
    }

    /// Writes all bytes; throws `PipelineError(.io)` (with `outputClosedMessage` on EPIPE).
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], what: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                if errno == EPIPE { throw PipelineError(.io, PipelineError.outputClosedMessage) }
                throw PipelineError(.io, "cannot write \(what): \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    public static func fileExists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    public static func directoryExists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    public static func list(_ dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// The absolute, normalised form of a path (symlinks resolved when it exists).
    public static func absolute(_ path: String) -> String {
        if let r = realpath(path, nil) {
            defer { free(r) }
            return String(cString: r)
        }
        if path.hasPrefix("/") { return path }
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buf, buf.count) != nil else { return path }
        return String(cString: buf) + "/" + path
    }

    public static func directory(of path: String) -> String {
        guard let i = path.lastIndex(of: "/") else { return "." }
        return i == path.startIndex ? "/" : String(path[..<i])
    }
}
