local plugin = { name = "mask", version = "1.0.0", api = 1, parallel = true }
function plugin.process(r) r.email = r.email:gsub("^[^@]*", "***", 1) end
return plugin
