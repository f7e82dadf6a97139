-- lua_bench.lua: throughput of Ember's Lua binding, in-process, one Lua thread.
--
--   LUA_CPATH="build/lua/?.so;;" lua5.4 bench/lua_bench.lua [--quick] [--msgs N] [--size BYTES]
--
-- Figures (wall clock, ember.clock):
--   publish -> poll      publish batches of messages to a POLL subscription with a Lua
--                        callback, then one conn:poll() per batch runs the callbacks
--                        (callback counts; a second run also reads msg.data)
--   publish, no interest publish on a subject nobody subscribes to
--   next_msg             publish then read back with sub:next_msg() (no callback)
--   request/reply        conn:request answered by a Lua responder in the same state
-- The peer, measured in the same run: a minimal pure-Lua event bus (exact-subject table
-- of callbacks, a queue drained by poll), the least a Lua program would do by hand.
-- Ratios > 1 mean Ember is faster. Targets are printed, never asserted.
local ember = require "ember"
local clock = ember.clock

local N, SIZE, QUICK = 2000000, 16, false
do
  local i = 1
  while arg and arg[i] do
    if arg[i] == "--quick" then QUICK = true; N = 100000
    elseif arg[i] == "--msgs" then N = tonumber(arg[i + 1]); i = i + 1
    elseif arg[i] == "--size" then SIZE = tonumber(arg[i + 1]); i = i + 1
    else error("unknown argument " .. arg[i]) end
    i = i + 1
  end
end
local BATCH = 1000
local PAYLOAD = string.rep("x", SIZE)
local REQS = QUICK and 20000 or 200000

local function best_of(runs, fn)
  local best = math.huge
  for _ = 1, runs do
    collectgarbage("collect")
    local t0 = clock()
    fn()
    local dt = clock() - t0
    if dt < best then best = dt end
  end
  return best
end
local RUNS = QUICK and 1 or 3

-- ------------------------------------------------------------------ the pure-Lua peer
local function lua_bus()
  local subs, queue, head, tail = {}, {}, 1, 0
  local bus = {}
  function bus.subscribe(subject, fn)
    local l = subs[subject]
    if not l then l = {}; subs[subject] = l end
    l[#l + 1] = fn
  end
  function bus.publish(subject, data)
    local l = subs[subject]
    if l then
      for i = 1, #l do
        tail = tail + 1
        queue[tail] = { fn = l[i], msg = { subject = subject, data = data } }
      end
    end
  end
  function bus.poll()
    local n = 0
    while head <= tail do
      local it = queue[head]
      queue[head] = nil
      head = head + 1
      it.fn(it.msg)
      n = n + 1
    end
    return n
  end
  return bus
end

-- ------------------------------------------------------------------ runs
local srv <close> = ember.server{ dont_listen = true }
local conn <close> = srv:connect()

print(string.format("Ember %s, %s, %d-byte payloads, %d messages, best of %d",
  ember.version, _VERSION, SIZE, N, RUNS))

local results = {}
local function report(name, count, dt, peer_dt)
  local rate = count / dt
  local line = string.format("%-28s %8.2f M msgs/s  %7.1f ns/msg", name, rate / 1e6, dt / count * 1e9)
  if peer_dt then
    line = line .. string.format("   pure-Lua bus %6.2f M/s  ratio %.2fx", count / peer_dt / 1e6, peer_dt / dt)
  end
  print(line)
  results[name] = rate
end

-- publish -> poll, callback counts
do
  local n = 0
  local sub = conn:subscribe("bench.pp", function() n = n + 1 end)
  local dt = best_of(RUNS, function()
    for _ = 1, N // BATCH do
      for _ = 1, BATCH do conn:publish("bench.pp", PAYLOAD) end
      conn:poll(0)
    end
  end)
  assert(n == N * RUNS, "lost messages")
  sub:unsubscribe()
  local bus, m = lua_bus(), 0
  bus.subscribe("bench.pp", function() m = m + 1 end)
  local peer = best_of(RUNS, function()
    for _ = 1, N // BATCH do
      for _ = 1, BATCH do bus.publish("bench.pp", PAYLOAD) end
      bus.poll()
    end
  end)
  report("publish -> poll", N, dt, peer)
end

-- publish -> poll, callback reads msg.data and msg.subject
do
  local bytes = 0
  local sub = conn:subscribe("bench.pd", function(m) bytes = bytes + #m.data + #m.subject end)
  local dt = best_of(RUNS, function()
    for _ = 1, N // BATCH do
      for _ = 1, BATCH do conn:publish("bench.pd", PAYLOAD) end
      conn:poll(0)
    end
  end)
  sub:unsubscribe()
  local bus, b2 = lua_bus(), 0
  bus.subscribe("bench.pd", function(m) b2 = b2 + #m.data + #m.subject end)
  local peer = best_of(RUNS, function()
    for _ = 1, N // BATCH do
      for _ = 1, BATCH do bus.publish("bench.pd", PAYLOAD) end
      bus.poll()
    end
  end)
  report("publish -> poll, msg.data", N, dt, peer)
end

-- publish with no interest
do
  local dt = best_of(RUNS, function()
    for _ = 1, N do conn:publish("bench.none", PAYLOAD) end
  end)
  local bus = lua_bus()
  local peer = best_of(RUNS, function()
    for _ = 1, N do bus.publish("bench.none", PAYLOAD) end
  end)
  report("publish, no interest", N, dt, peer)
end

-- publish -> next_msg
do
  local sub = conn:subscribe("bench.nm")
  local got = 0
  local dt = best_of(RUNS, function()
    for _ = 1, N // BATCH do
      for _ = 1, BATCH do conn:publish("bench.nm", PAYLOAD) end
      for _ = 1, BATCH do
        if sub:next_msg(0) then got = got + 1 end
      end
    end
  end)
  assert(got == N * RUNS, "lost messages")
  sub:unsubscribe()
  report("publish -> next_msg", N, dt)
end

-- request/reply, Lua responder in the same state
do
  local sub = conn:subscribe("bench.svc", function(m) m:respond(m.data) end)
  local dt = best_of(RUNS, function()
    for _ = 1, REQS do conn:request("bench.svc", PAYLOAD, 1000) end
  end)
  sub:unsubscribe()
  local bus = lua_bus()
  local reply
  bus.subscribe("bench.svc", function(m) bus.publish(m.reply, m.data) end)
  bus.subscribe("bench.inbox", function(m) reply = m end)
  local peer = best_of(RUNS, function()
    for _ = 1, REQS do
      reply = nil
      bus.publish("bench.svc", PAYLOAD)
      -- the pure-Lua bus carries no reply subject: emulate it
      bus.poll()
      bus.publish("bench.inbox", PAYLOAD)
      bus.poll()
    end
  end)
  local rate = REQS / dt
  print(string.format("%-28s %8.0f req/s     %7.2f us/req   pure-Lua bus %.0f req/s  ratio %.2fx",
    "request/reply (Lua resp.)", rate, dt / REQS * 1e6, REQS / peer, peer / dt))
  results["request/reply"] = rate
end

local target = 2e6
print(string.format("target publish -> poll >= %.1f M msgs/s: %s (%.2f M msgs/s)", target / 1e6,
  results["publish -> poll"] >= target and "met" or "NOT met", results["publish -> poll"] / 1e6))
