-- Waits `config.seconds` (default 5) on each record with luapipe.sleep; logs its teardown.
local plugin = { name = "waiter", version = "1.0.0", api = 1 }
local seconds = 5
function plugin.setup(config, ctx) seconds = config.seconds or seconds end
function plugin.process(record, ctx) luapipe.sleep(seconds) end
function plugin.teardown(ctx) ctx.log.info("teardown ran") end
return plugin
