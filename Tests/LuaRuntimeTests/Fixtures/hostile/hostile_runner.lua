-- Not a case: the plugin through which the end-to-end suite (luapipeTests/HostileE2ETests)
-- runs each case of this folder with the luapipe binary. config.case names the case file;
-- its function is called as process.
local plugin = { name = "hostile_runner", version = "1.0.0", api = 1 }
local case
function plugin.setup(config, ctx) case = require(config.case) end
function plugin.process(record, ctx) return case(record, ctx) end
return plugin
