-- wrk script: queued writes, N single-row INSERTs per request (default 1).
--   POST /db/execute?queue  [["INSERT INTO bench(v) VALUES(?)", "<value>"], ...]
-- Arguments: N. Every answer must carry a sequence number; a full queue's
-- 503 counts as busy (neither done nor failed). Values are unique per
-- statement: 16 random characters fixed per thread and a counter in hex.

dofile((string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./") .. "report.lua")

expect_body = '"sequence_number":'
busy_status = 503

local headers = { ["Content-Type"] = "application/json" }
local prefix = ""
local counter = 0
local per_request = 1

function init(args)
  per_request = tonumber(args[1] or "1") or 1
  prefix = seed_thread_prefix(16)
end

function request()
  local parts = {}
  for i = 1, per_request do
    counter = counter + 1
    parts[i] = '["INSERT INTO bench(v) VALUES(?)","' .. prefix .. string.format("%016x", counter) .. '"]'
  end
  return wrk.format("POST", "/db/execute?queue", headers, "[" .. table.concat(parts, ",") .. "]")
end
