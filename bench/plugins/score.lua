local plugin = { name = "score", version = "1.0.0", api = 1, parallel = true }
function plugin.process(r) r.score = r.score * 2; r.count = r.count + 1 end
return plugin
