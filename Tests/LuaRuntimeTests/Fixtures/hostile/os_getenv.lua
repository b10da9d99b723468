-- expect: error: attempt to call a nil value (field 'getenv')
-- Reading the host's environment (secrets) through os.getenv.
return function(record) record.home = os.getenv("HOME") end
