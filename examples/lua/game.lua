-- game.lua: a game loop on an embedded Ember broker.
--
-- Entities publish their position every frame on game.pos.<id>; a world system keeps
-- the latest positions; a responder answers "who is nearest to (x, y)?" on
-- game.query.nearest; every few frames an entity asks it, and scores a point when the
-- answer is close. The game's state lives in a key-value bucket ("game"): a checkpoint
-- of every position, each entity's score (updated with compare-and-set), the frame
-- number; a scoreboard watches the score keys. One conn:poll() per frame runs every
-- callback (positions, queries, KV watch) on this thread: no C thread ever enters Lua.
--
--   lua5.4 examples/lua/game.lua                   300 frames, as fast as possible
--   lua5.4 examples/lua/game.lua --frames 600 --fps 60
--   lua5.4 examples/lua/game.lua --listen          also on TCP: watch with any NATS
--                                                  client, e.g. `nats sub 'game.>'`,
--                                                  `nats kv watch game`
--   lua5.4 examples/lua/game.lua --store DIR       keep the bucket in files under DIR
--                                                  (a saved game: scores carry over)
--
-- Needs the module on LUA_CPATH, e.g. LUA_CPATH="build/lua/?.so;;".
local ember = require "ember"

local opts = { frames = 300, fps = 0, entities = 50, listen = false, quiet = false, store = nil }
do
  local i = 1
  while arg and arg[i] do
    local a = arg[i]
    if a == "--frames" then opts.frames = tonumber(arg[i + 1]); i = i + 1
    elseif a == "--fps" then opts.fps = tonumber(arg[i + 1]); i = i + 1
    elseif a == "--entities" then opts.entities = tonumber(arg[i + 1]); i = i + 1
    elseif a == "--listen" then opts.listen = true
    elseif a == "--quiet" then opts.quiet = true
    elseif a == "--store" then opts.store = arg[i + 1]; i = i + 1
    else error("unknown argument " .. a) end
    i = i + 1
  end
end

local function log(...)
  if not opts.quiet then print(...) end
end

-- The broker lives inside the game, with JetStream for the key-value bucket. Without
-- --listen it opens no port at all. Without --store the bucket is in memory (JetStream
-- still wants a directory: a temporary one, removed at the end).
local store_dir = opts.store
if not store_dir then
  store_dir = os.tmpname()
  os.remove(store_dir)
end
local srv <close> = ember.server{
  dont_listen = not opts.listen, port = -1, server_name = "game", logging = false,
  jetstream = true, store_dir = store_dir,
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

-- ------------------------------------------------------------------ game state (KV)
-- One bucket holds the state: pos.<id> (a checkpoint every 30 frames), score.<id>,
-- frame. With --store it is a file bucket and survives the process.
local js = bus:jetstream()
local state <close> = assert(js:create_key_value{
  bucket = "game", history = 1, storage = opts.store and "file" or "memory",
})

local function checkpoint()
  for id, p in pairs(world) do
    state:put("pos." .. id, string.format("%.2f,%.2f", p.x, p.y))
  end
end

-- +1 on score.<id>, as a compare-and-set: another writer (another process on TCP, a
-- second system) could update the same key; on "wrong sequence" read again and retry.
local cas_retries = 0
local function add_point(id)
  local key = "score." .. id
  for _ = 1, 10 do
    local e = state:get(key)
    local rev, err, code
    if e then
      rev, err, code = state:update(key, tostring(tonumber(e.value) + 1), e.revision)
    else
      rev, err, code = state:create(key, "1")
    end
    if rev then return rev end
    if code ~= "wrong sequence" then error(err) end
    cas_retries = cas_retries + 1
  end
  error("add_point: too much contention on " .. key)
end

-- The scoreboard follows score.* through a watch: its callback runs inside the frame's
-- poll like any other. First the saved scores, then nil (all caught up), then changes.
local scoreboard, scoreboard_ready, score_events = {}, false, 0
local scoreboard_watch <close> = state:watch("score.*", function(e)
  if e == nil then scoreboard_ready = true; return end
  local id = tonumber(e.key:match("^score%.(%d+)$"))
  scoreboard[id] = e.operation == "PUT" and { points = tonumber(e.value), rev = e.revision } or nil
  score_events = score_events + 1
end)

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

  -- 2. one poll per frame: the world system sees this frame's positions, and the
  --    scoreboard the score changes made since the last frame
  bus:poll(0)
  state:put("frame", tostring(frame))
  if frame % 30 == 0 then checkpoint() end

  -- 3. every 5th frame, one entity asks who is nearest. The responder above is a Lua
  --    callback on this thread: request() keeps polling while it waits, so it answers.
  if frame % 5 == 0 then
    local e = entities[(frame // 5 - 1) % #entities + 1]
    local reply, err = bus:request("game.query.nearest",
      string.format("%.2f,%.2f", e.x, e.y), 100, { Entity = tostring(e.id) })
    if reply then
      local d = tonumber(reply.data:match(",(.+)$"))
      if d and d < 15 then add_point(e.id) end
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
checkpoint()

-- The watch delivers asynchronously (the next frame's poll): let the scoreboard catch up
-- with the bucket, then check that they agree.
local function scoreboard_matches()
  if not scoreboard_ready then return false end
  for _, key in ipairs(state:keys()) do
    local id = tonumber(key:match("^score%.(%d+)$"))
    if id then
      local e = state:get(key)
      if not scoreboard[id] or scoreboard[id].rev ~= e.revision then return false end
    end
  end
  return true
end
local deadline = ember.clock() + 5
while not scoreboard_matches() and ember.clock() < deadline do bus:poll(10) end

local leaders = {}
for id, s in pairs(scoreboard) do leaders[#leaders + 1] = { id = id, points = s.points } end
table.sort(leaders, function(a, b) return a.points > b.points or (a.points == b.points and a.id < b.id) end)
for i = 1, math.min(3, #leaders) do
  log(string.format("score #%d: entity %d, %d points", i, leaders[i].id, leaders[i].points))
end

print(string.format(
  "%d frames, %d entities: %d positions published and seen, %d queries answered, " ..
  "%d keys in the game bucket, %d score changes watched; %.1f ms total, worst frame %.3f ms",
  opts.frames, #entities, positions_seen, queries_answered, #state:keys(), score_events,
  elapsed * 1000, worst * 1000))
assert(positions_seen == opts.frames * #entities, "lost position messages")
assert(queries_answered == opts.frames // 5, "unanswered queries")
assert(scoreboard_matches(), "the scoreboard missed score changes")
assert(state:get("frame").value == tostring(opts.frames), "frame counter not saved")
assert(state:get("pos.1"), "positions not checkpointed")

if not opts.store then
  scoreboard_watch:close()
  state:close()
  srv:close()
  os.execute("rm -rf '" .. store_dir .. "'")
end
