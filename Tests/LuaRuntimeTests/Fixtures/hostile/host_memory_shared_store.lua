-- expect: memory
-- ctx.shared lives in the host: 64 keys of a 4 MB string = 256 MB outside the 32 MB limit.
return function(record, ctx)
  local big = ("x"):rep(4 << 20)
  for i = 1, 64 do ctx.shared:set("k" .. i, big) end
end
