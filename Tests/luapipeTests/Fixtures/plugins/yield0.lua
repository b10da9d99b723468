-- Parallel; each record waits once, for nothing (luapipe.sleep(0)): one wait event per record.
local plugin = { name = "yield0", version = "1.0.0", api = 1, parallel = true }
function plugin.process(record, ctx) luapipe.sleep(0) end
return plugin
