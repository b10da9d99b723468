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

    /// Reads a whole regular file of at most `limit` bytes (`RegularFile.read`).
    public static func readRegular(_ path: String, limit: Int, what: String) throws(PipelineError) -> [UInt8] {
        try RegularFile.read(path, limit: limit, what: what)
    }

    /// Reads a manifest: a regular file of at most `limit` bytes, or a pipe (`<(...)`, a
    /// FIFO) that gives at most `limit` bytes and ends within `seconds`. Anything else (a
    /// device, a directory) is refused; nothing is read without bound.
    public static func readManifest(_ path: String, limit: Int = 16 << 20, seconds: Int32 = 10) throws(PipelineError) -> [UInt8] {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw PipelineError(.manifest, "\(path): cannot read the manifest (\(String(cString: strerror(errno)))); check the path")
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return try readRegular(path, limit: limit, what: "manifest")
        case S_IFIFO, S_IFSOCK: break
        default: throw PipelineError(.manifest, "\(path): the manifest must be a file (or a pipe), not a device or a folder")
        }
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw PipelineError(.manifest, "\(path): cannot read the manifest (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var left = Int(seconds) * 1000
        while left > 0 {
            let started = LuaPipeCore.monotonicMilliseconds()
            if poll(&p, 1, Int32(min(left, 100))) > 0 {
                let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n == 0 { return out }
                if n < 0 && errno != EAGAIN && errno != EINTR {
                    throw PipelineError(.manifest, "\(path): cannot read the manifest (\(String(cString: strerror(errno))))")
                }
                if n > 0 { out.append(contentsOf: buf[0..<n]) }
                if out.count > limit { throw PipelineError(.manifest, "\(path): the manifest is longer than \(limit >> 20) MiB") }
            }
            left -= max(1, LuaPipeCore.monotonicMilliseconds() - started)
        }
        throw PipelineError(.manifest, "\(path): the manifest (a pipe) did not end within \(seconds) s")
    }

    /// Writes all bytes; throws `PipelineError(.io)` (with `outputClosedMessage` on EPIPE).
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], what: String) throws {
        let (_, error) = writeSome(fd, bytes, what: what)
        if let error { throw error }
    }

    /// Writes all bytes, or as many as it can: how many, and the error that stopped it.
    /// `progress`, when given, is told the bytes written so far as the writes go. Then a write
    /// to a pipe or socket is at most PIPE_BUF (4 KiB), which goes in whole or not at all: a
    /// larger blocking write returns only once all of it is in, so one stuck on a full pipe
    /// never said how much went out.
    public static func writeSome(_ fd: Int32, _ bytes: [UInt8], what: String,
                                 progress: ((Int) -> Void)? = nil) -> (Int, PipelineError?) {
        var offset = 0
        var st = stat()
        let stream = fstat(fd, &st) == 0 && ((st.st_mode & S_IFMT) == S_IFIFO || (st.st_mode & S_IFMT) == S_IFSOCK)
        let most = progress != nil && stream ? Int(PIPE_BUF) : Int.max
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, min(most, bytes.count - offset)) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                if errno == EPIPE { return (offset, PipelineError(.io, PipelineError.outputClosedMessage)) }
                return (offset, PipelineError(.io, "cannot write \(what): \(String(cString: strerror(errno)))"))
            }
            offset += n
            progress?(offset)
        }
        return (offset, nil)
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
