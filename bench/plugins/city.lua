local plugin = { name = "city", version = "1.0.0", api = 1, parallel = true }
function plugin.process(r) r.city = r.city:upper(); r.adult = r.age >= 18 end
return plugin
