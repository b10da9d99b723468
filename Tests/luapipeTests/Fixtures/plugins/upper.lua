-- Upper-cases `name`; fails on a record whose name is not a string.
local plugin = { name = "upper", version = "1.0.0", api = 1, parallel = true }
function plugin.process(record, ctx)
  if type(record.name) ~= "string" then error("name must be a string") end
  record.name = record.name:upper()
end
return plugin
