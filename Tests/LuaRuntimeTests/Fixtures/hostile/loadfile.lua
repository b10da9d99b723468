-- expect: error: attempt to call a nil value (global 'loadfile')
-- loadfile reads any file, bytecode included.
return function(record) loadfile("/etc/passwd", "bt") end
