-- wrk script: every request carries a key never sent before (`client-id: PREFIX-T-NNNNNNNNN`),
-- and each thread stops after its share of TOTAL requests, so about TOTAL sessions get placed.
-- Usage: wrk ... -s unique_keys.lua URL -- TOTAL THREADS PREFIX [MARK_DIR]

local next_thread = 0
function setup(thread)
  thread:set("thread_index", next_thread)
  next_thread = next_thread + 1
end

local quota = 0
local sent = 0
local mark_dir = nil
local finished = false
local head = ""
local tail = "\r\n\r\n"
local last = nil

function init(args)
  mark_dir = args[4]
  local total = tonumber(args[1]) or 1000000
  local threads = tonumber(args[2]) or 1
  local prefix = args[3] or "u"
  quota = math.ceil(total / threads)
  local host = wrk.headers["Host"] or (wrk.host .. ":" .. tostring(wrk.port))
  head = "GET / HTTP/1.1\r\nHost: " .. host .. "\r\nclient-id: " .. prefix .. "-" ..
         tostring(thread_index or 0) .. "-"
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
  if sent >= quota then
    finish()
    return last  -- a repeated key: places nothing new
  end
  sent = sent + 1
  last = head .. string.format("%09d", sent) .. tail
  return last
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
