-- expect: timeout
return function(record)
  xpcall(function() error("x") end, function(m) while true do end end)
  while true do end
end
