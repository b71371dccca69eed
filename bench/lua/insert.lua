-- wrk script: one single-row INSERT per request.
--   POST /db/execute  [["INSERT INTO bench(v) VALUES(?)", "<32 chars>"]]
-- The value is unique per request: 16 random characters fixed per thread
-- followed by the thread's request counter in hex.

dofile((string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./") .. "report.lua")

expect_body = '"rows_affected":1'

local headers = { ["Content-Type"] = "application/json" }
local prefix = ""
local counter = 0

function init(args)
  prefix = seed_thread_prefix(16)
end

function request()
  counter = counter + 1
  local body = '[["INSERT INTO bench(v) VALUES(?)","' ..
    prefix .. string.format("%016x", counter) .. '"]]'
  return wrk.format("POST", "/db/execute", headers, body)
end
