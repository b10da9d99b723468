-- P6a: a record waits 2 ms on a timer (a stand-in for a service), many in flight.
local plugin = { name = "sleep", version = "1.0.0", api = 1 }
function plugin.process(record, ctx)
  luapipe.sleep(0.002)
  record.waited = true
end
return plugin
