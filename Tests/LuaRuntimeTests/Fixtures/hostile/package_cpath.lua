-- expect: error: attempt to index a nil value (global 'package')
-- Pointing package.cpath at native modules, then requiring one of them.
return function(record)
  package.cpath = "/usr/lib/x86_64-linux-gnu/lua/5.4/?.so;" .. package.cpath
  require("cjson")
end
