// Fuzz targets for what reads untrusted bytes: the JSON reader and the Lua value bridge.
// scripts/fuzz.sh builds this with -sanitize=fuzzer -DFUZZING and runs libFuzzer; a normal
// build makes a replayer that runs files (the seed corpus, kept crashers) through the same code.
import LuaPipeCore
import LuaRuntime

#if canImport(Glibc)
import Glibc
#endif

/// The JSON target: parse; if it is a value, write it back and read that again: the writer's
/// output must parse to the same value.
func fuzzJSON(_ data: UnsafeBufferPointer<UInt8>) -> Tape? {
    // The C reader and the Swift reference accept the same texts and make the same tapes.
    for recordOnly in [true, false] {
        let fast = JSONReader.parseFast(data, recordOnly: recordOnly)
        let reference = recordOnly ? try? JSONReader.referenceParseRecord(data) : try? JSONReader.referenceParseValue(data)
        precondition(fast?.bytes == reference?.bytes, "the C and Swift JSON readers disagree on \(Array(data))")
    }
    let tape = (try? JSONReader.parseRecord(data)) ?? (try? JSONReader.parseValue(data))
    guard let tape else { return nil }
    var out: [UInt8] = [], reference: [UInt8] = []
    JSONWriter.write(tape, to: &out)
    JSONWriter.referenceWrite(tape, to: &reference)
    precondition(out == reference, "the C and Swift JSON writers disagree")
    let again = out.withUnsafeBufferPointer { try? JSONReader.parseValue($0) }
    guard let again else { fatalError("the writer wrote what the reader refuses: \(String(decoding: out, as: UTF8.self))") }
    precondition(again.value() == tape.value(), "a JSON round trip changed the value")
    return tape.tag == .object ? tape : nil
}

/// The bridge target: a record through an identity plugin (the value must come back the
/// same) and through a plugin that changes it depending on its content (what comes back
/// must be a record the reader accepts); the Lua stack must stay balanced.
func fuzzBridge(_ tape: Tape, lua: LuaState, identity: LuaRef, mutate: LuaRef) {
    if let back = (try? lua.call(identity, arg: tape, mode: .record, timeout: .seconds(5)))?.output {
        precondition(back.value() == tape.value(), "a Lua round trip changed the value")
    }
    if let out = try? lua.call(mutate, arg: tape, mode: .record, allowEmit: true, timeout: .seconds(5)) {
        for t in (out.output.map { [$0] } ?? []) + out.emits {
            var bytes: [UInt8] = []
            JSONWriter.write(t, to: &bytes)
            precondition((bytes.withUnsafeBufferPointer { try? JSONReader.parseRecord($0) }) != nil,
                         "the bridge produced a record the reader refuses: \(String(decoding: bytes, as: UTF8.self))")
        }
    }
    precondition(lua.stackTop == 0, "the bridge left the stack unbalanced")
}

/// Both targets, or the one LUAPIPE_FUZZ_TARGET (json | bridge) names.
func fuzzOne(_ data: UnsafeBufferPointer<UInt8>) {
    let which = target()
    guard let tape = fuzzJSON(data), which.kind != "json" else { return }
    fuzzBridge(tape, lua: which.lua, identity: which.identity, mutate: which.mutate)
}

/// Changes a record in ways its content decides: removes, adds, nests, empties, emits.
let mutator = """
return function(r, ctx)
  local n = 0
  for k, v in pairs(r) do
    n = n + 1
    if type(v) == "table" then
      if n % 3 == 0 then for i = #v, 1, -1 do v[i] = nil end end
      v["k" .. (#k % 5)] = n
    elseif type(v) == "string" then
      r[k] = v:upper() .. #v
    elseif math.type(v) == "integer" and v % 2 == 0 then
      r[k] = nil
    end
  end
  r.added = { n = n, list = luapipe.array(), map = luapipe.object() }
  if n % 2 == 1 then ctx.emit({ copy = r.added }) end
end
"""

struct Target {
    var kind: String
    var lua: LuaState
    var identity: LuaRef
    var mutate: LuaRef
}

nonisolated(unsafe) var state: Target?

func target() -> Target {
    if let state { return state }
    let lua = try! LuaState(options: .init(memoryLimit: 256 << 20))
    let identity = try! lua.load("return function(r) end", chunkName: "=identity")
    let mutate = try! lua.load(mutator, chunkName: "=mutate")
    let kind = getenv("LUAPIPE_FUZZ_TARGET").map { String(cString: $0) } ?? "both"
    let t = Target(kind: kind, lua: lua, identity: identity, mutate: mutate)
    state = t
    return t
}

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    fuzzOne(UnsafeBufferPointer(start: data, count: size))
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
        var n = 0
        for path in CommandLine.arguments.dropFirst() {
            guard let bytes = FileIO.read(path) else { print("cannot read \(path)"); continue }
            bytes.withUnsafeBufferPointer { fuzzOne($0) }
            n += 1
        }
        print("replayed \(n) inputs")
    }
}

enum FileIO {
    static func read(_ path: String) -> [UInt8]? { LuaState.readFile(path) }
}
#endif
