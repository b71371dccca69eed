-- wrk script: the write both systems are compared on, for raftlite.
--   POST /db/execute
--   [["INSERT OR REPLACE INTO model(key, value) VALUES(?, ?)", "k<random 1..N>", "<value>"]]
-- The same work as dqlite-demo's `PUT /k<n>` (dqlite_put.lua): dqlite-demo
-- runs `INSERT OR REPLACE INTO model(key, value) VALUES(?, ?)` on a table
-- `model (key TEXT, value TEXT, UNIQUE(key))`. A 503 (a full queue asking
-- the client to retry) counts as busy, not as a write.
-- Arguments (after `--`): N (default 100000) and the value (default 32 bytes).

dofile((string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./") .. "report.lua")

expect_body = '"rows_affected":1'
busy_status = 503

local headers = { ["Content-Type"] = "application/json" }
local n = 100000
local value = "0123456789abcdef0123456789abcdef"

function init(args)
  n = tonumber(args[1]) or n
  value = args[2] or value
  math.randomseed(os.time() + 7919 * (tid or 0))
end

function request()
  local body = '[["INSERT OR REPLACE INTO model(key, value) VALUES(?, ?)","k' ..
    math.random(1, n) .. '","' .. value .. '"]]'
  return wrk.format("POST", "/db/execute", headers, body)
end
