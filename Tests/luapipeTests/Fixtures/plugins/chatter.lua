-- Prints 64 KiB per record: more than a pipe holds after a few records.
local plugin = { name = "chatter", version = "1.0.0", api = 1 }
local line = string.rep("x", 65536)
function plugin.process(record, ctx) print(line) end
return plugin
