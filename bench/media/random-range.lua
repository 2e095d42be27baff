-- wrk script: every request asks for one random, aligned slice of the object at the URL.
--
--   wrk -t1 -c64 -d20s --latency -s random-range.lua URL -- OBJECT_BYTES [RANGE_BYTES] [SEED]
--
-- OBJECT_BYTES is the object's size; RANGE_BYTES (default 1 MiB) is the slice length, and
-- slices start at multiples of it. SEED makes the sequence of ranges repeatable, so two servers
-- measured in the same round get the same requests. done() prints one machine-readable line,
-- "RESULT key=value …", that bench/media/run.sh parses (latencies in microseconds).

local range_bytes = 1048576
local slots = 1

function init(args)
   local object_bytes = tonumber(args[1])
   if not object_bytes then
      error("usage: wrk … -s random-range.lua URL -- OBJECT_BYTES [RANGE_BYTES] [SEED]")
   end
   range_bytes = tonumber(args[2]) or range_bytes
   slots = math.floor(object_bytes / range_bytes)
   if slots < 1 then
      error("the object is smaller than one range")
   end
   math.randomseed(tonumber(args[3]) or os.time())
end

function request()
   local first = math.random(0, slots - 1) * range_bytes
   local last = first + range_bytes - 1
   return wrk.format("GET", wrk.path,
                     { ["Range"] = string.format("bytes=%.0f-%.0f", first, last) })
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d bytes=%.0f duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d "
         .. "connect_err=%d read_err=%d write_err=%d status_err=%d timeout_err=%d\n",
      summary.requests, summary.bytes, summary.duration,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.status, e.timeout))
end
