-- P6c: a record asks a local service (2 ms) for its geo data.
local plugin = { name = "http", version = "1.0.0", api = 1 }
local base
function plugin.setup(config) base = config.url end
function plugin.process(record, ctx)
  local res = luapipe.http.request { url = base .. record.id }
  record.geo = res.json
end
return plugin
