-- The same trivial transform in every kind: count + 1 (bench/kinds, luapipe-microbench).
local plugin = { name = "incr", version = "1.0.0", api = 1 }
function plugin.process(r) r.count = r.count + 1 end
return plugin
