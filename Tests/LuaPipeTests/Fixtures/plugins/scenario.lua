-- The scenario plugin, in Lua. ScenarioPlugins.swift has the same plugin as a sync and an
-- async Swift plugin; the scenario suite runs all three and expects identical outcomes.
local plugin = { name = "scenario", version = "1.0.0", api = 1, parallel = true }

local id

function plugin.setup(config, ctx)
  id = ctx.plugin.id
  ctx.shared:set("setup:" .. id, ctx.shared:incr("clock", 1))
end

function plugin.process(record, ctx)
  local action = record.action
  if action == "drop" then return false end
  if action == "replace" then return { replaced = true, n = record.n } end
  if action == "fail" then error("boom at " .. tostring(record.n)) end
  if action == "emit" then
    ctx.emit({ from = record.n, i = 1 })
    ctx.emit({ from = record.n, i = 2 })
  end
  record["seen_" .. id] = true
  ctx.shared:incr("seen", 1)
  ctx.shared:incr("seen:" .. id, 1)
end

function plugin.flush(ctx)
  ctx.emit({ flushed = id, seen = ctx.shared:get("seen:" .. id) })
end

function plugin.teardown(ctx)
  ctx.shared:set("teardown:" .. id, ctx.shared:incr("clock", 1))
end

return plugin
