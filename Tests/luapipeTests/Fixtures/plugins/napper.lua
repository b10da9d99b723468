-- Waits (record.n % 4) * 20 ms with luapipe.sleep, then tags the record with `version`.
-- WatchTests copies it and rewrites the version line, so --watch reloads it while records
-- wait in the old instance.
local plugin = { name = "napper", version = "1.0.0", api = 1 }
local version = "v1"
function plugin.process(record, ctx)
  luapipe.sleep((record.n % 4) * 0.02)
  record.v = version
end
return plugin
