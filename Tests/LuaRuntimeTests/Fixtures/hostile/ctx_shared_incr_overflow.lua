-- expect: error: would overflow a 64-bit integer
-- Incrementing past math.maxinteger must be an error, not a wrap or a trap in the host.
return function(record, ctx)
  ctx.shared:set("k", math.maxinteger)
  ctx.shared:incr("k", 1)
end
