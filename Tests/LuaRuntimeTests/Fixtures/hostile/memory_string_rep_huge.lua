-- expect: memory
-- One C call asks for a 1 GB string.
return function(record) record.s = ("x"):rep(1e9) end
