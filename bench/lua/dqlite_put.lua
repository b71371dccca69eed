-- wrk script: the write both systems are compared on, for dqlite-demo.
--   PUT /k<random 1..N>  with the value as body
-- dqlite-demo answers `done` after `INSERT OR REPLACE INTO model(key, value)
-- VALUES(?, ?)`, or `Error: <message>` with status 200. "database is locked"
-- (a concurrent write transaction on another of its connections; the demo
-- does not retry) counts as busy, not as a write; any other error fails.
-- Arguments (after `--`): N (default 100000) and the value (default 32 bytes).

dofile((string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./") .. "report.lua")

expect_body = "done"
busy_body = "database is locked"

local n = 100000
local value = "0123456789abcdef0123456789abcdef"

function init(args)
  n = tonumber(args[1]) or n
  value = args[2] or value
  math.randomseed(os.time() + 7919 * (tid or 0))
end

function request()
  return wrk.format("PUT", "/k" .. math.random(1, n), nil, value)
end
