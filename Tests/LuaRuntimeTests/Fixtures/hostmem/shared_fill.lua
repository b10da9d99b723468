-- Fills ctx.shared with small keys ("k1" = 1, ...) until it is full or config.keys are in: the
-- store's real memory must stay near what it counts (HostMemoryTests watches the child's RSS).
local plugin = { name = "shared_fill", version = "1.0.0", api = 1 }
local keys
function plugin.setup(config) keys = config.keys end
function plugin.process(r, ctx)
  local shared, stored = ctx.shared, 0
  local ok, err = pcall(function()
    for i = 1, keys do
      shared:set("k" .. i, i)
      stored = i
    end
  end)
  r.stored = stored
  r.full = not ok
  if err then r.err = tostring(err) end
end
return plugin
