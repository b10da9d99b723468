#if canImport(Glibc)
import Glibc
#endif

/// Reading a file whose kind and size nobody vouches for (plugin files, modules, lookup
/// tables, manifests): it must be a regular file of at most `limit` bytes. It is opened
/// without blocking (a FIFO would hold the thread for good), checked once open (a path checked
/// before could be swapped), and never read past the limit (a sparse file can be huge).
public enum RegularFile {
    public static func read(_ path: String, limit: Int, what: String) throws(PipelineError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw PipelineError(.io, "cannot read the \(what) \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw PipelineError(.io, "the \(what) \(path) is not a regular file (\(what)s must be regular files)")
        }
        guard st.st_size <= limit else {
            throw PipelineError(.io, "the \(what) \(path) is larger than the \(limit >> 20) MiB limit for \(what)s (\(st.st_size) bytes)")
        }
        // One byte more than fstat said tells a file that grew since.
        var out = [UInt8](repeating: 0, count: Int(st.st_size) + 1)
        var len = 0
        while len < out.count {
            let n = out.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + len, $0.count - len) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw PipelineError(.io, "cannot read the \(what) \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            len += n
        }
        guard len < out.count else { throw PipelineError(.io, "the \(what) \(path) changed while it was read") }
        out.removeLast(out.count - len)
        return out
    }
}
