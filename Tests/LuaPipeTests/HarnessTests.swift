import LuaPipe
import LuaPipeCore
import LuaPipeTesting
import Testing

@Suite("LuaPipeTesting harness")
struct HarnessTests {
    @Test("a Lua plugin in one call: outputs with flush emits, logs and the shared store")
    func lua() async {
        let run = await PluginHarness.run(lua: ScenarioTests.fixtures + "/plugins/scenario.lua",
                                          records: [["n": 1], ["n": 2, "action": "emit"]])
        #expect(run.error == nil)
        #expect(run.outputs.map { JSONWriter.encode($0) } == [
            #"{"n":1,"seen_scenario":true}"#, #"{"from":2,"i":1}"#, #"{"from":2,"i":2}"#,
            #"{"n":2,"action":"emit","seen_scenario":true}"#, #"{"flushed":"scenario","seen":2}"#,
        ])
        #expect(run.shared.get("seen") == .int(2))
    }

    @Test("sync and async Swift plugins in one call, with captured logs and errors")
    func swift() async {
        let sync = await PluginHarness.run(sync: { _ in ScenarioSync() }, records: [["n": 1], ["n": 2, "action": "fail"]],
                                           onError: .skip)
        #expect(sync.outputs.count == 3)  // n1, n2 unchanged, the flush emit
        #expect(sync.logs.contains { $0.contains("boom at 2") }, "\(sync.logs)")
        let async = await PluginHarness.run({ _ in ScenarioAsync() }, records: [["n": 1, "action": "fail"]])
        #expect(async.error?.message.contains("boom at 1") == true)
    }
}

/// Sleeps far past any timeout, cooperatively.
final class Sleepy: Plugin {
    func process(_ record: Record, _ context: PluginContext) async throws -> Disposition {
        if record["sleep"] != nil { try await Task.sleep(for: .seconds(30)) }
        return .pass
    }
}

@Suite("Async plugin timeouts")
struct AsyncTimeoutTests {
    @Test("an async call past timeout_ms is cancelled, its record fails as a timeout, the run goes on")
    func timeout() async {
        let run = await PluginHarness.run({ _ in Sleepy() }, records: [["sleep": true], ["n": 2]], onError: .drop,
                                          timeout: .milliseconds(100))
        #expect(run.outputs.map { JSONWriter.encode($0) } == [#"{"n":2}"#])
        #expect(run.stats.plugins.first?.timeouts == 1 && run.stats.dropped == 1 && run.stats.balanced)
        #expect(run.logs.contains { $0.contains("timeout") }, "\(run.logs)")
    }
}
