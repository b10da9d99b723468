-- expect: error: attempt to call a nil value (field 'remove')
-- Deleting host files through os.remove (os.rename, os.tmpname must be gone too).
return function(record)
  assert(os.rename == nil and os.tmpname == nil and os.setlocale == nil, "os leaks more than time/clock/date/difftime")
  os.remove("/tmp/luapipe-victim")
end
