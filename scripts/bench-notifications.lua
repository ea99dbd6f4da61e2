-- wrk script of scripts/bench.sh: POSTs registry notification envelopes of
-- BENCH_EVENTS_PER_ENVELOPE events each. BENCH_EVENT_TEMPLATE is one event's JSON with
-- `%s` for its id and `%s` for its tag; every event gets an id no other request of any
-- run used (a random prefix per wrk thread, then a counter), because intake drops
-- duplicate ids. Method and headers: wrk.method below, -H on the command line.
wrk.method = "POST"

local template = assert(os.getenv("BENCH_EVENT_TEMPLATE"), "BENCH_EVENT_TEMPLATE is not set")
local per_envelope = tonumber(os.getenv("BENCH_EVENTS_PER_ENVELOPE") or "1")
local prefix
local counter = 0

function init(args)
  local f = assert(io.open("/proc/sys/kernel/random/uuid"))
  prefix = f:read("*l")
  f:close()
end

function request()
  local events = {}
  for i = 1, per_envelope do
    counter = counter + 1
    events[i] = string.format(template, prefix .. "-" .. counter, "i" .. counter)
  end
  -- A fresh header table: wrk.format stores the Content-Length in the one it gets.
  local headers = {}
  for name, value in pairs(wrk.headers) do
    headers[name] = value
  end
  return wrk.format(nil, nil, headers, '{"events":[' .. table.concat(events, ",") .. "]}")
end
