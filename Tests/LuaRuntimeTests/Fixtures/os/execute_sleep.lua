-- A command that outlives the call: it is killed at the deadline.
return function() os.execute("sleep 30") end
