-- expect: error: emitted record: field 'a.b.c': the table contains itself
-- ctx.emit with a cycle two levels down: the message names the field.
return function(record, ctx)
  local r = { a = { b = {} } }
  r.a.b.c = r.a
  ctx.emit(r)
end
