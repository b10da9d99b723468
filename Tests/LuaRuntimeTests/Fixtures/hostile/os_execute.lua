-- expect: error: attempt to call a nil value (field 'execute')
return function(record) os.execute("touch /tmp/luapipe-escaped") end
