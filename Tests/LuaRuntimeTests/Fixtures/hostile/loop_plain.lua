-- expect: timeout
return function(record) while true do end end
