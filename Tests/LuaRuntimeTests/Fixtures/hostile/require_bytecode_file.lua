-- expect: error: attempt to load a binary chunk
-- lib/bytecode.lua holds precompiled Lua 5.4 bytecode: require loads text only.
return function(record) require("lib.bytecode")(record) end
