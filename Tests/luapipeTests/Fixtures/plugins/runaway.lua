-- Misbehaves on demand: loops (plain, in pcall, in a coroutine made at load time), bombs
-- memory, or changes the record and emits before failing. Counts its setups.
local plugin = { name = "runaway", version = "1.0.0", api = 1 }
local spin = coroutine.wrap(function() while true do end end)

function plugin.setup(config, ctx) ctx.shared:incr("setups", 1) end

function plugin.process(record, ctx)
  local m = record.mode
  if m == "loop" then while true do end
  elseif m == "pcall" then while true do pcall(function() while true do end end) end
  elseif m == "coroutine" then spin()
  elseif m == "bomb" then
    local t = {}
    for i = 1, 1e9 do t[i] = ("x"):rep(100000) .. i end
  elseif m == "half" then
    record.changed = true
    record.name = nil
    ctx.emit({ partial = true })
    error("failed after changing the record")
  end
  record.setups = ctx.shared:get("setups")
end

return plugin
