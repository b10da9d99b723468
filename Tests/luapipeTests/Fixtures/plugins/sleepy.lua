-- Sleeps with luapipe.sleep in setup or in teardown (config.setup_seconds,
-- config.teardown_seconds), as a plugin that waits on a slow service there would.
local plugin = { name = "sleepy", version = "1.0.0", api = 1 }
local config = {}
function plugin.setup(c, ctx)
  config = c
  if c.setup_seconds then luapipe.sleep(c.setup_seconds) end
end
function plugin.process(record, ctx) end
function plugin.teardown(ctx)
  if config.teardown_seconds then luapipe.sleep(config.teardown_seconds) end
end
return plugin
