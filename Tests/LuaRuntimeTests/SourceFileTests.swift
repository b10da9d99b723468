@testable import LuaRuntime
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Plugin files and required modules are regular files under LuaState.maxSourceBytes, read by
/// luapipe itself: a FIFO cannot block a worker, a sparse file is not read (nor lexed) whole.
@Suite("Plugin source files")
struct SourceFileTests {
    /// A fresh folder with a FIFO, a sparse 200 GB module, a plugin padded by a 16 GB hole
    /// and a plain module.
    static func folder() throws -> String {
        var template = Array("/tmp/luapipe-src-XXXXXX".utf8CString)
        let dir = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        #expect(mkfifo(dir + "/fifo.lua", 0o600) == 0)
        for (name, size) in [("sparse.lua", Int64(200) << 30), ("padded.lua", (Int64(16) << 30) + 4096)] {
            let fd = open(dir + "/" + name, O_CREAT | O_WRONLY, 0o600)
            #expect(fd >= 0)
            let head = Array("return function() end\n--".utf8)
            _ = head.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            #expect(ftruncate(fd, off_t(size)) == 0)
            close(fd)
        }
        let fd = open(dir + "/ok.lua", O_CREAT | O_WRONLY, 0o600)
        let body = Array("return 42\n".utf8)
        _ = body.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        return dir
    }

    @Test("require refuses a FIFO at once and a module over the size limit")
    func requireRefuses() async throws {
        let dir = try Self.folder()
        let messages = try await withLua(.init(memoryLimit: 64 << 20, root: dir)) { lua -> [String] in
            var out: [String] = []
            for name in ["fifo", "sparse", "ok"] {
                let fn = try lua.load("return function() return require('\(name)') end", chunkName: "=req")
                do {
                    let r = try lua.call(fn, mode: .value, timeout: .seconds(10))
                    out.append("ok \(r.output.map(json) ?? "")")
                } catch let e as LuaError {
                    out.append(e.message)
                }
                lua.release(fn)
            }
            return out
        }
        #expect(messages.count == 3)
        #expect(messages[0].contains("is not a regular file"), "\(messages[0])")
        #expect(messages[1].contains("larger than the 16 MiB limit"), "\(messages[1])")
        #expect(messages[2] == "ok 42")
    }

    @Test("a plugin file must be a regular file under the size limit")
    func pluginFileRefuses() async throws {
        let dir = try Self.folder()
        let started = ContinuousClock.now
        #expect(throws: LuaError.self) { _ = try LuaState.readSource(dir + "/fifo.lua") }
        do {
            _ = try LuaState.readSource(dir + "/fifo.lua")
        } catch {
            #expect(error.code == .file)
            #expect(error.message.contains("not a regular file"), "\(error.message)")
        }
        do {
            _ = try LuaState.readSource(dir + "/padded.lua")
            Issue.record("a 16 GB plugin file was read")
        } catch {
            #expect(error.message.contains("larger than the 16 MiB limit"), "\(error.message)")
        }
        #expect(try LuaState.readSource(dir + "/ok.lua") == Array("return 42\n".utf8))
        #expect(ContinuousClock.now - started < .seconds(5))
    }
}
