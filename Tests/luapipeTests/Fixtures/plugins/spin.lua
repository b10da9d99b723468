-- Loops forever on records with spin = true, inside pcall.
local plugin = { name = "spin", version = "1.0.0", api = 1 }
function plugin.process(record, ctx)
  if record.spin then while true do pcall(function() while true do end end) end end
end
return plugin
