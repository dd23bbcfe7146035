-- wrk script: every request carries `client-id: key-NNNNNNN`, cycling through N keys.
-- Usage: wrk ... -s keys.lua URL -- N THREADS [ONE_PASS [MARK_DIR]]
-- With ONE_PASS = 1 each thread stops after its N/THREADS requests: together they send every key
-- exactly once (the warm-up that places all N sessions before a measured run).
-- Each thread pre-builds its N requests in init() (building a request per call would cost wrk
-- CPU that the proxy under test needs: all share 2 cores) and starts at its own offset, so the
-- threads walk the key space out of step. done() prints one machine-readable BENCH line.

local next_thread = 0
function setup(thread)
  thread:set("thread_index", next_thread)
  next_thread = next_thread + 1
end

local requests = {}
local count = 0
local pos = 0
local stop_after = 0
local sent = 0
local mark_dir = nil
local finished = false

function init(args)
  mark_dir = args[4]
  count = tonumber(args[1]) or 10000
  local threads = tonumber(args[2]) or 1
  for i = 1, count do
    requests[i] = wrk.format("GET", "/", {["client-id"] = string.format("key-%07d", i - 1)})
  end
  local first = math.floor((thread_index or 0) * count / threads)
  pos = first
  if args[3] == "1" then
    stop_after = math.floor(((thread_index or 0) + 1) * count / threads) - first
  end
end

-- Stops this thread once its share is sent. wrk's main thread still sleeps for the whole -d
-- duration, so the thread also drops a marker file in MARK_DIR (if given): the harness sends wrk
-- SIGINT when every thread has one, and wrk then prints its results.
function finish()
  if not finished then
    finished = true
    if mark_dir then
      local f = io.open(mark_dir .. "/thread-" .. tostring(thread_index or 0), "w")
      if f then f:close() end
    end
  end
  wrk.thread:stop()
end

function request()
  if stop_after > 0 then
    if sent >= stop_after then
      finish()
      return requests[pos]  -- a repeat of the last key: places nothing new
    end
    sent = sent + 1
  end
  pos = pos % count + 1
  return requests[pos]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f " ..
    "connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
