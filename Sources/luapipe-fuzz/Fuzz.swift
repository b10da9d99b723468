// Fuzz targets for what reads untrusted bytes: the JSON reader and the Lua value bridge.
// scripts/fuzz.sh builds this with -sanitize=fuzzer -DFUZZING and runs libFuzzer; a normal
// build makes a replayer that runs files (the seed corpus, kept crashers) through the same code.
import LuaPipeCore
import LuaRuntime

/// One input: parse it as a record; if it is one, write it back and read that again (the
/// writer's output must parse to the same value), then round-trip it through Lua.
func fuzzOne(_ data: UnsafeBufferPointer<UInt8>, lua: LuaState, identity: LuaRef) {
    guard let tape = try? JSONReader.parseRecord(data) else {
        _ = try? JSONReader.parseValue(data)
        return
    }
    var out: [UInt8] = []
    JSONWriter.write(tape, to: &out)
    let again = out.withUnsafeBufferPointer { try? JSONReader.parseRecord($0) }
    guard let again else { fatalError("the writer wrote what the reader refuses: \(String(decoding: out, as: UTF8.self))") }
    precondition(again.value() == tape.value(), "a JSON round trip changed the value")
    let outcome = try? lua.call(identity, arg: tape, mode: .record, timeout: .seconds(5))
    guard let back = outcome?.output else { return }  // e.g. deeper than Lua's C stack allows
    precondition(back.value() == tape.value(), "a Lua round trip changed the value")
    precondition(lua.stackTop == 0, "the bridge left the stack unbalanced")
}

nonisolated(unsafe) var state: (LuaState, LuaRef)?

func target() -> (LuaState, LuaRef) {
    if let state { return state }
    let lua = try! LuaState(options: .init(memoryLimit: 256 << 20))
    let fn = try! lua.load("return function(r) end", chunkName: "=identity")
    state = (lua, fn)
    return (lua, fn)
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let (lua, fn) = target()
    fuzzOne(UnsafeBufferPointer(start: data, count: size), lua: lua, identity: fn)
    return 0
}

public typealias Argv = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<Argv?>,
               _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32

/// SwiftPM calls an executable's entry `<module>_main`; hand over to libFuzzer's driver.
@_cdecl("luapipe_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: Argv?) -> Int32 {
    var c = argc
    var v = argv
    return runDriver(&c, &v, { data, size in fuzz(data, size) })
}
#else
@main
struct Replay {
    static func main() {
        let (lua, fn) = target()
        var n = 0
        for path in CommandLine.arguments.dropFirst() {
            guard let bytes = FileIO.read(path) else { print("cannot read \(path)"); continue }
            bytes.withUnsafeBufferPointer { fuzzOne($0, lua: lua, identity: fn) }
            n += 1
        }
        print("replayed \(n) inputs")
    }
}

enum FileIO {
    static func read(_ path: String) -> [UInt8]? { LuaState.readFile(path) }
}
#endif
