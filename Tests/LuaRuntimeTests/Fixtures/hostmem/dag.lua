-- A DAG of shared tables: 41 tables that stand for 2^40 strings of 4 KB each. Handed to the
-- host in the way config.mode says, it must stop at the plugin's memory limit (memory_mb), not
-- expand in host memory (HostMemoryTests runs this in a child luapipe and watches its RSS).
local plugin = { name = "dag", version = "1.0.0", api = 1 }
local mode

local function dag()
  local t = { ("x"):rep(4096) }
  for _ = 1, 40 do t = { t, t } end
  return t
end

function plugin.setup(config) mode = config.mode end

function plugin.process(r, ctx)
  if mode == "return" then return { dag = dag() } end
  if mode == "encode" then r.json = luapipe.json.encode(dag()) end
  if mode == "shared" then ctx.shared:set("dag", dag()) end
end

function plugin.flush(ctx)
  if mode == "emit" then ctx.emit({ dag = dag() }) end
end

return plugin
