-- Shared by the wrk scripts in this directory (loaded with dofile by each).
--
-- Every response is checked: a status outside 200..299 counts as bad_status,
-- and a 2xx body that lacks `expect_body` (a plain substring the including
-- script sets) or contains `"error"` counts as bad_body. rqlite reports SQL
-- errors with status 200 and an "error" key, so the status alone is not
-- enough. A script may also set `busy_status` (a status code) and/or
-- `busy_body` (a substring of a 2xx body) for answers that mean "busy, try
-- again" (a full queue's 503, dqlite's "database is locked"): those count
-- as busy, neither done nor failed. done() prints one line `WRK_JSON {...}`
-- with the totals and the latency percentiles in microseconds (of every
-- response, busy ones included), which bench/lib/wrk.ts parses.

-- Seeds this thread's random generator (differently per thread) and returns
-- a random string of `n` characters [a-z0-9]: scripts prefix their unique
-- keys or values with it so that threads never collide.
function seed_thread_prefix(n)
  math.randomseed(os.time() + 7919 * (tid or 0))
  local alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
  local chars = {}
  for i = 1, n do
    local k = math.random(1, #alphabet)
    chars[i] = string.sub(alphabet, k, k)
  end
  return table.concat(chars)
end

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

bad_status = 0
bad_body = 0
busy = 0
first_bad = nil
expect_body = nil
busy_status = nil
busy_body = nil

function response(status, headers, body)
  if status == busy_status
      or (busy_body ~= nil and status >= 200 and status <= 299
        and string.find(body, busy_body, 1, true)) then
    busy = busy + 1
    return
  end
  if status < 200 or status > 299 then
    bad_status = bad_status + 1
  elseif (expect_body ~= nil and not string.find(body, expect_body, 1, true))
      or string.find(body, '"error"', 1, true) then
    bad_body = bad_body + 1
  else
    return
  end
  if first_bad == nil then
    first_bad = status .. " " .. string.sub(body or "", 1, 300)
  end
end

local function json_string(s)
  if s == nil then
    return "null"
  end
  s = string.gsub(s, '[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local nstatus, nbody, nbusy, sample = 0, 0, 0, nil
  for _, t in ipairs(threads) do
    nstatus = nstatus + (t:get("bad_status") or 0)
    nbody = nbody + (t:get("bad_body") or 0)
    nbusy = nbusy + (t:get("busy") or 0)
    if sample == nil then
      sample = t:get("first_bad")
    end
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"bad_status":%d,"bad_body":%d,"busy":%d,"first_bad":%s,' ..
    '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,' ..
    '"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    nstatus, nbody, nbusy, json_string(sample),
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
