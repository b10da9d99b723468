-- expect: error: attempt to call a nil value (field 'dump')
-- string.dump makes bytecode, the first step of every bytecode-based escape.
return function(record) record.bc = string.dump(function() end) end
