-- expect: error: attempt to call a nil value (global 'dofile')
-- dofile reads (and runs) any file, bytecode included.
return function(record) dofile("/etc/passwd") end
