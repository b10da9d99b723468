-- Fails on records with `bad` set; marks every other record `ok`. Parallel.
local plugin = { name = "failer", version = "1.0.0", api = 1, parallel = true }
function plugin.process(record, ctx)
  if record.bad then error("bad record " .. tostring(record.id)) end
  record.ok = true
end
return plugin
