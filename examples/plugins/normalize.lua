-- Checks and cleans an order: the amount must be a number, the country a 2-letter code.
local plugin = {
  name = "normalize",
  version = "1.0.0",
  api = 1,
  description = "Validates orders and normalises country codes and e-mail addresses",
  parallel = true,
}

function plugin.process(record, ctx)
  if type(record.amount) ~= "number" then
    error("amount must be a number, got " .. type(record.amount))
  end
  if type(record.country) ~= "string" or #record.country ~= 2 then
    error("country must be a 2-letter code")
  end
  record.country = record.country:upper()
  if record.email then record.email = record.email:lower() end
end

plugin.tests = {
  { name = "upper-cases the country", input = { amount = 1, country = "de" },
    expect = { { amount = 1, country = "DE" } } },
  { name = "rejects a text amount", input = { amount = "ten", country = "de" },
    expect_error = "amount must be a number" },
}

return plugin
