#if canImport(Glibc)
import Glibc
#endif

/// Refuses a run that would write a file it also reads, or write one file twice (an input
/// truncated before it is read, two writers interleaving). Files are compared by device and
/// inode, through symlinks; a file that does not exist yet by its folder's identity and its
/// name. Character devices (/dev/null, a terminal) are exempt.
public struct PathCollisions {
    /// What a path stands for, as the kernel sees it.
    enum Identity: Hashable {
        case file(dev: UInt64, ino: UInt64)
        case pending(dev: UInt64, ino: UInt64, name: String)
    }

    private var reads: [(label: String, id: Identity)] = []
    private var writes: [(label: String, id: Identity)] = []
    private var writtenPaths: [(label: String, path: String)] = []
    /// Folders Lua plugins `require` modules from: no `.lua` file below one may be written.
    private var moduleRoots: [(label: String, path: String)] = []
    /// stderr, when it is a regular file (`2>>file`), and stdout's identity: log lines must not
    /// land in a file the run reads or writes, but stdout and stderr may share one on purpose.
    private var logs: (label: String, id: Identity)?
    private var stdout: Identity?

    public init() {}

    /// A file the run reads; `label` names it in the message ("--input in.jsonl").
    public mutating func read(_ path: String, _ label: String) {
        if let id = Self.identity(path) { reads.append((label, id)) }
    }

    /// A file descriptor the run reads (stdin for `--input -`).
    public mutating func read(fd: Int32, _ label: String) {
        if let id = Self.identity(fd: fd) { reads.append((label, id)) }
    }

    public mutating func write(_ path: String, _ label: String) {
        if let id = Self.identity(path) { writes.append((label, id)) }
        writtenPaths.append((label, path))
    }

    /// A plugin's folder, whose `.lua` files it may `require` at any time of the run.
    public mutating func modules(_ folder: String, _ label: String) {
        moduleRoots.append((label, Self.resolved(folder)))
    }

    public mutating func write(fd: Int32, _ label: String) {
        guard let id = Self.identity(fd: fd) else { return }
        writes.append((label, id))
        if fd == 1 { stdout = id }
    }

    /// Where log lines go (stderr): checked only when it is a regular file.
    public mutating func logs(fd: Int32, _ label: String) {
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, let id = Self.identity(st) else { return }
        logs = (label, id)
    }

    /// True when stderr is a file the run reads or writes: the refusal must not be written
    /// there either (`2>>input.jsonl` had it appended to the input).
    public var logsCollide: Bool {
        guard let logs else { return false }
        return (reads + writes).contains { $0.id == logs.id && $0.id != stdout }
    }

    /// The first collision, as a message that says what to do; nil when there is none.
    public func check() -> String? {
        for w in writtenPaths {
            // By where it leads: a symlink named out.jsonl may point at a module.
            let target = Self.resolved(w.path)
            guard target.hasSuffix(".lua") || w.path.hasSuffix(".lua") else { continue }
            for root in moduleRoots where target.hasPrefix(root.path + "/") {
                return "\(w.label) is a Lua file in the folder \(root.label) may load modules from (it would be emptied, and `require` would load it); write somewhere else"
            }
        }
        if let logs {
            for other in reads + writes where other.id == logs.id && other.id != stdout {
                return "\(logs.label) is the same file as \(other.label): log lines would land in it; send stderr somewhere else"
            }
        }
        for (i, w) in writes.enumerated() {
            for r in reads where r.id == w.id {
                return "\(w.label) is the same file as \(r.label): a run never writes a file it reads (it would be emptied before it is read); write somewhere else"
            }
            for other in writes[..<i] where other.id == w.id {
                return "\(w.label) is the same file as \(other.label): two writers would interleave in it; give each its own file"
            }
        }
        return nil
    }

    /// The real path of `path`, or of its folder plus its name when it does not exist yet.
    static func resolved(_ path: String) -> String {
        if let r = realpath(path, nil) {
            defer { free(r) }
            return String(cString: r)
        }
        // Not there yet, or a dangling symlink: follow the links to where the file would be.
        var path = path
        for _ in 0..<40 {
            var buf = [CChar](repeating: 0, count: 4097)
            let n = readlink(path, &buf, 4096)
            guard n > 0 else { break }
            let target = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            path = target.hasPrefix("/") ? target : FileIO.directory(of: path) + "/" + target
        }
        let dir = FileIO.directory(of: path)
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let r = realpath(dir, nil) else { return path }
        defer { free(r) }
        return String(cString: r) + "/" + name
    }

    static func identity(fd: Int32) -> Identity? {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        return identity(st)
    }

    private static func identity(_ st: stat) -> Identity? {
        if (st.st_mode & S_IFMT) == S_IFCHR { return nil }  // /dev/null, a terminal
        return .file(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
    }

    /// The identity of `path`, following symlinks; for a path that does not exist yet, its
    /// folder's identity and its name (after following a dangling symlink to where it points).
    static func identity(_ path: String) -> Identity? {
        var path = path
        for _ in 0..<40 {
            var st = stat()
            if stat(path, &st) == 0 { return identity(st) }
            var lst = stat()
            guard lstat(path, &lst) == 0, (lst.st_mode & S_IFMT) == S_IFLNK else { break }
            var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(path, &buf, buf.count - 1)
            guard n > 0 else { break }
            let target = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            path = target.hasPrefix("/") ? target : FileIO.directory(of: path) + "/" + target
        }
        let name = path.split(separator: "/").last.map(String.init) ?? path
        var dir = stat()
        guard stat(FileIO.directory(of: path), &dir) == 0 else { return nil }
        return .pending(dev: UInt64(dir.st_dev), ino: UInt64(dir.st_ino), name: name)
    }
}
