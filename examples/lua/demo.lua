-- demo.lua: DEMO.md steps 1-5 from Lua.
--
--   lua5.4 examples/lua/demo.lua                embed a broker on a free port, answer
--                                               hello.world, ask it in-process, measure
--   lua5.4 examples/lua/demo.lua --dont-listen  no client port: in-process only
--   lua5.4 examples/lua/demo.lua --log          the server's log lines on stderr
--   lua5.4 examples/lua/demo.lua --wait         keep serving until Ctrl-C (then try
--                                               `nats req hello.world hi` or any NATS client)
--
-- Needs the module on LUA_CPATH, e.g. LUA_CPATH="build/lua/?.so;;".
local ember = require "ember"

local flags = {}
for _, a in ipairs(arg or {}) do flags[a] = true end

-- Step 1 (embed) and 3 (logging): start without blocking, wait until ready (5 s, or a
-- clear error), connect in-process.
local srv <close> = ember.server{
  port = -1,
  dont_listen = flags["--dont-listen"] or false,
  logging = flags["--log"] or false,
}
print("broker ready; client URL: " .. (srv:client_url() or "none (dont_listen)"))
local conn <close> = srv:connect()

-- Step 2: a service. Its callback runs inside conn:poll() (or while this thread waits
-- in conn:request), always on this thread.
conn:subscribe("hello.world", function(msg) msg:respond("hello there") end)

-- Step 4: the in-process connection works with or without a client port.
local reply = assert(conn:request("hello.world", "hi", 1000))
print("in-process request: " .. reply.data)

-- Step 5: measure the in-process request/reply loop.
local n = 100000
local t0 = ember.clock()
for _ = 1, n do conn:request("hello.world", "hi", 1000) end
local dt = ember.clock() - t0
print(string.format("%d in-process requests: %.2f us each (%.0f req/s)", n, dt / n * 1e6, n / dt))

if flags["--wait"] then
  print("serving hello.world; Ctrl-C to stop")
  local ok, err = pcall(function()
    while true do conn:poll(100) end -- TCP clients' requests are answered here
  end)
  if not ok and not tostring(err):match("interrupted") then error(err, 0) end
  print("\nshutting down")
end
