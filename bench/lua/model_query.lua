-- wrk script: one point SELECT by key on the table model_write.lua fills.
--   POST /db/query?level=<level>
--   [["SELECT value FROM model WHERE key=?", "k<random 1..N>"]]
-- Every key 1..N must exist (the benchmark loads them first).
-- Arguments (after `--`): N (default 100000) and the read consistency level
-- (default weak; e.g. none).

dofile((string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./") .. "report.lua")

expect_body = '"values":[['

local headers = { ["Content-Type"] = "application/json" }
local n = 100000
local path = "/db/query?level=weak"

function init(args)
  n = tonumber(args[1]) or n
  path = "/db/query?level=" .. (args[2] or "weak")
  math.randomseed(os.time() + 7919 * (tid or 0))
end

function request()
  local body = '[["SELECT value FROM model WHERE key=?","k' .. math.random(1, n) .. '"]]'
  return wrk.format("POST", path, headers, body)
end
