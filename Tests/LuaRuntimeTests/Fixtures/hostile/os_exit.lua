-- expect: error: attempt to call a nil value (field 'exit')
-- os.exit would end the host process (skipping every teardown).
return function(record) os.exit(0, true) end
