-- expect: error: ctx.shared is full
-- ctx.shared lives in the host; its own byte limit (256 MiB by default) stops 64 keys of 8 MB strings.
return function(record, ctx)
  local big = ("x"):rep(4 << 20)
  for i = 1, 64 do ctx.shared:set("k" .. i, big) end
end
