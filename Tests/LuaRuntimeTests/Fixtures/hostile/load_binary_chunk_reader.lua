-- expect: error: attempt to load a binary chunk
-- The same bytecode fed through a reader function, one byte at a time, mode "bt".
local bc = "\027\076\117\097\084\000\025\147\013\010\026\010\004\008\008\120\086\000\000\000\000\000\000\000\000\000\000\000\040\119\064\001\128\128\128\000\001\002\132\081\000\000\000\079\000\000\000\070\000\002\001\070\000\001\001\128\129\001\000\000\129\128\129\129\001\000\002\130\018\128\000\001\199\000\001\000\130\004\136\101\115\099\097\112\101\100\017\128\128\128\128\128\128\128\128\128\128"
return function(record)
  local i = 0
  local f, err = load(function() i = i + 1 return i <= #bc and bc:sub(i, i) or nil end, "=reader", "bt")
  if f then return f()(record) end
  error(err)
end
