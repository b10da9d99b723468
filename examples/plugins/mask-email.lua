-- Hides the local part of an e-mail address: ann@example.org -> ***@example.org
local plugin = {
  name = "mask-email",
  version = "1.2.0",
  api = 1,
  description = "Masks the local part of e-mail addresses",
  parallel = true,
}

local field

function plugin.setup(config, ctx)
  field = config.field or "email"
end

function plugin.process(record, ctx)
  local v = record[field]
  if type(v) ~= "string" then error("string expected in field '" .. field .. "'") end
  record[field] = v:gsub("^[^@]*", "***", 1)
end

plugin.tests = {
  { name = "masks", config = { field = "email" }, input = { email = "ann@example.org" },
    expect = { { email = "***@example.org" } } },
  { name = "rejects numbers", input = { email = 42 }, expect_error = "string expected" },
}

return plugin
