-- expect: error: attempt to index a nil value (global 'io')
-- Reading a host file through the io library: io must not exist.
return function(record)
  local f = io.open("/etc/passwd", "r")
  record.leak = f:read("a")
end
