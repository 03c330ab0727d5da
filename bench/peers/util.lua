-- Shared by the Lua peers of the benchmark (Lua 5.3 and 5.4): argument
-- parsing, the result protocol the driver reads, percentiles, partners.
--
-- A peer prints "queue <id> <key>" once it owns a queue (so the driver can
-- remove it should the peer die) and "result <what> <value>" lines.

local U = {}

-- The directory holding this file, for spawning partner scripts.
U.dir = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or "."

function U.queue(id, key)
  io.write(string.format("queue %d %d\n", id, key or 0))
  io.flush()
end

function U.result(what, value)
  io.write(string.format("result %s %.6g\n", what, value))
end

-- Nearest-rank percentile p (0..1) of a sorted array.
local function pct(v, p)
  local k = math.ceil(p * #v)
  if k < 1 then k = 1 end
  return v[k]
end

-- Reports the median and p99 of an array of nanosecond samples.
function U.latencies(v, prefix)
  table.sort(v)
  U.result(prefix .. "_median_ns", pct(v, 0.5))
  U.result(prefix .. "_p99_ns", pct(v, 0.99))
end

function U.random_key()
  return math.random(0x10000000, 0x7ffffffe)
end

-- Starts a partner process; its output is read (and it is awaited) by U.await.
-- BENCH_PARTNER_CPU=n puts it on CPU n.
function U.spawn(cmd)
  local cpu = os.getenv("BENCH_PARTNER_CPU")
  if cpu and cpu ~= "" then cmd = "taskset -c " .. cpu .. " " .. cmd end
  return assert(io.popen(cmd, "r"))
end

function U.await(p)
  io.write(p:read("a"))
  local ok, how, code = p:close()
  if not ok then error(string.format("partner failed: %s %s", how, code)) end
end

-- Runs main(); cleanup() always runs (it removes the queue, which also ends
-- a partner blocked on it). An error exits with status 1.
function U.guard(main, cleanup)
  local ok, err = xpcall(main, debug.traceback)
  cleanup()
  if not ok then
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
  end
end

-- The command that runs the same Lua script as a partner.
function U.self_cmd(interp, script, ...)
  local parts = { interp, script }
  for _, a in ipairs({ ... }) do parts[#parts + 1] = tostring(a) end
  return table.concat(parts, " ")
end

local function pid()
  local f = io.open("/proc/self/stat")
  if not f then return 0 end
  local s = f:read("l")
  f:close()
  return tonumber(s:match("^(%d+)")) or 0
end
math.randomseed(os.time() * 65536 + pid())

return U
