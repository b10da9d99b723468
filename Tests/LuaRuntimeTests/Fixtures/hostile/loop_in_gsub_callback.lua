-- expect: timeout
-- The loop hides in a string.gsub callback (called from C).
return function(record)
  record.s = ("abc"):gsub(".", function(c) while true do end end)
end
