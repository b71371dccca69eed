-- wrk script: one point SELECT by primary key per request.
--   GET /db/query?q=SELECT * FROM bench WHERE id=<random 1..N>&level=<level>
-- Arguments (after `--` on the wrk command line): N (default 10000) and the
-- read consistency level (default weak; e.g. none).

dofile((string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./") .. "report.lua")

expect_body = '"values":[['

local n = 10000
local level = "weak"

function init(args)
  n = tonumber(args[1]) or n
  level = args[2] or level
  math.randomseed(os.time() + 7919 * (tid or 0))
end

function request()
  local path = "/db/query?q=SELECT%20*%20FROM%20bench%20WHERE%20id%3D" ..
    math.random(1, n) .. "&level=" .. level
  return wrk.format("GET", path)
end
