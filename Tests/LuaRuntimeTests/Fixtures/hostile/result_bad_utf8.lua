-- expect: error: string is not valid UTF-8
-- A lone continuation byte, an overlong NUL and a UTF-16 surrogate in the output.
return function(record) return { a = "ok", b = "\x80", c = "\xC0\x80", d = "\xED\xA0\x80" } end
