-- expect: error: require takes a dotted name
-- A NUL byte would cut the path C sees to "lib/loops" (a module that spins): refused by name.
return function(record) require("lib.loops\0x") end
