-- wrk script: queued writes (rqlite's `?queue`), one statement per request.
--   POST /db/execute?queue
--   [["INSERT OR REPLACE INTO queued(key, value) VALUES(?, ?)", "<unique key>", "<value>"]]
-- The server answers at once with {"results":[],"sequence_number":N} and
-- applies the statements later in batches; every key is new (16 random
-- characters per thread plus the thread's request counter), so the table's
-- row count tells how many were applied. A 503 (queue full) counts as busy.
-- Argument (after `--`): the value (default 32 bytes).

dofile((string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./") .. "report.lua")

expect_body = '"sequence_number"'
busy_status = 503

local headers = { ["Content-Type"] = "application/json" }
local value = "0123456789abcdef0123456789abcdef"
local prefix = ""
local counter = 0

function init(args)
  value = args[1] or value
  prefix = seed_thread_prefix(16)
end

function request()
  counter = counter + 1
  local body = '[["INSERT OR REPLACE INTO queued(key, value) VALUES(?, ?)","q' ..
    prefix .. counter .. '","' .. value .. '"]]'
  return wrk.format("POST", "/db/execute?queue", headers, body)
end
