-- expect: error: attempt to index a nil value (global 'package')
-- Loading a native library (arbitrary C code) through package.loadlib.
return function(record)
  local open = package.loadlib("/lib/x86_64-linux-gnu/libc.so.6", "system")
  open("touch /tmp/luapipe-escaped")
end
