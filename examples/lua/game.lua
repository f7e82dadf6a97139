-- game.lua: a game loop on an embedded Ember broker.
--
-- Entities publish their position every frame on game.pos.<id>; a world system keeps
-- the latest positions; a responder answers "who is nearest to (x, y)?" on
-- game.query.nearest; every few frames an entity asks it. One conn:poll() per frame runs
-- every callback on this thread: no C thread ever enters Lua.
--
--   lua5.4 examples/lua/game.lua                   300 frames, as fast as possible
--   lua5.4 examples/lua/game.lua --frames 600 --fps 60
--   lua5.4 examples/lua/game.lua --listen          also on TCP: watch with any NATS
--                                                  client, e.g. `nats sub 'game.>'`
--
-- Needs the module on LUA_CPATH, e.g. LUA_CPATH="build/lua/?.so;;".
local ember = require "ember"

local opts = { frames = 300, fps = 0, entities = 50, listen = false, quiet = false }
do
  local i = 1
  while arg and arg[i] do
    local a = arg[i]
    if a == "--frames" then opts.frames = tonumber(arg[i + 1]); i = i + 1
    elseif a == "--fps" then opts.fps = tonumber(arg[i + 1]); i = i + 1
    elseif a == "--entities" then opts.entities = tonumber(arg[i + 1]); i = i + 1
    elseif a == "--listen" then opts.listen = true
    elseif a == "--quiet" then opts.quiet = true
    else error("unknown argument " .. a) end
    i = i + 1
  end
end

local function log(...)
  if not opts.quiet then print(...) end
end

-- The broker lives inside the game. Without --listen it opens no port at all.
local srv <close> = ember.server{
  dont_listen = not opts.listen, port = -1, server_name = "game", logging = false,
}
if opts.listen then log("broker listening on " .. srv:client_url()) end

-- One in-process connection for the game's systems. A bug in one system is reported
-- here and does not stop the frame.
local bus <close> = srv:connect{ name = "game-systems" }
bus.on_error = function(err) io.stderr:write("system error: ", err, "\n") end

-- ------------------------------------------------------------------ entities
local entities = {}
math.randomseed(42)
for id = 1, opts.entities do
  entities[id] = {
    id = id,
    x = math.random() * 100, y = math.random() * 100,
    vx = (math.random() - 0.5) * 2, vy = (math.random() - 0.5) * 2,
  }
end

local function move(e)
  e.x, e.y = e.x + e.vx, e.y + e.vy
  if e.x < 0 or e.x > 100 then e.vx = -e.vx end
  if e.y < 0 or e.y > 100 then e.vy = -e.vy end
end

-- ------------------------------------------------------------------ world system
-- Keeps the latest known position of every entity, from the position messages.
local world = {}
local positions_seen = 0
bus:subscribe("game.pos.*", function(msg)
  local id = tonumber(msg.subject:match("(%d+)$"))
  local x, y = msg.data:match("^([^,]+),([^,]+)$")
  world[id] = { x = tonumber(x), y = tonumber(y) }
  positions_seen = positions_seen + 1
end)

-- ------------------------------------------------------------------ query service
-- "x,y" -> "id,distance" of the nearest other entity (the asker's id in a header).
local queries_answered = 0
bus:subscribe("game.query.nearest", function(msg)
  local x, y = msg.data:match("^([^,]+),([^,]+)$")
  x, y = tonumber(x), tonumber(y)
  local me = tonumber(msg.headers and msg.headers["Entity"])
  local best, best_d
  for id, p in pairs(world) do
    if id ~= me then
      local d = math.sqrt((p.x - x) ^ 2 + (p.y - y) ^ 2)
      if not best_d or d < best_d then best, best_d = id, d end
    end
  end
  queries_answered = queries_answered + 1
  msg:respond(best and string.format("%d,%.2f", best, best_d) or "none")
end, "query-workers") -- a queue group: more workers could share the load

-- ------------------------------------------------------------------ frame pacing
-- A subscription nobody publishes to works as a sleep: next_msg waits for its timeout.
local idle = bus:subscribe("game.idle")
local function wait_until(deadline)
  local left = (deadline - ember.clock()) * 1000
  if left >= 1 then idle:next_msg(math.floor(left)) end
end

-- ------------------------------------------------------------------ the loop
local t_start = ember.clock()
local frame_dt = opts.fps > 0 and 1 / opts.fps or 0
local worst = 0
for frame = 1, opts.frames do
  local t0 = ember.clock()

  -- 1. simulate and publish every position
  for _, e in ipairs(entities) do
    move(e)
    bus:publish("game.pos." .. e.id, string.format("%.2f,%.2f", e.x, e.y))
  end

  -- 2. one poll per frame: the world system sees this frame's positions
  bus:poll(0)

  -- 3. every 10th frame, one entity asks who is nearest. The responder above is a Lua
  --    callback on this thread: request() keeps polling while it waits, so it answers.
  if frame % 10 == 0 then
    local e = entities[(frame // 10 - 1) % #entities + 1]
    local reply, err = bus:request("game.query.nearest",
      string.format("%.2f,%.2f", e.x, e.y), 100, { Entity = tostring(e.id) })
    if reply then
      if frame % 100 == 0 then
        log(string.format("frame %4d: entity %d asks who is nearest: %s", frame, e.id, reply.data))
      end
    else
      log("query failed: " .. err)
    end
  end

  local spent = ember.clock() - t0
  if spent > worst then worst = spent end
  if frame_dt > 0 then wait_until(t0 + frame_dt) end
end
local elapsed = ember.clock() - t_start

print(string.format(
  "%d frames, %d entities: %d positions published and seen, %d queries answered; " ..
  "%.1f ms total, worst frame %.3f ms",
  opts.frames, #entities, positions_seen, queries_answered, elapsed * 1000, worst * 1000))
assert(positions_seen == opts.frames * #entities, "lost position messages")
assert(queries_answered == opts.frames // 10, "unanswered queries")
