local H = require "helper"
local ember = H.ember

-- Poll conn until cond() holds or ms pass; returns cond()'s last value.
local function poll_until(conn, cond, ms)
  local deadline = ember.clock() + (ms or 2000) / 1000
  while not cond() and ember.clock() < deadline do conn:poll(10) end
  return cond()
end

describe("key-value", function()
  local srv, conn, js, dir, kv
  before_each(function()
    srv, conn, js, dir = H.js_server()
    kv = assert(js:create_key_value{ bucket = "game", history = 5, storage = "memory" })
  end)
  after_each(function() H.close_js(srv, dir) end)

  it("puts and gets values with revisions", function()
    assert.are.equal("game", kv:bucket())
    assert.matches("ember.kv %(game%)", tostring(kv))
    local r1 = assert(kv:put("player.1.pos", "1,2"))
    local r2 = assert(kv:put("player.1.pos", "3,4"))
    assert.are.equal("number", math.type(r1) and "number")
    assert.is_true(r2 > r1)
    local e = assert(kv:get("player.1.pos"))
    assert.are.equal("game", e.bucket)
    assert.are.equal("player.1.pos", e.key)
    assert.are.equal("3,4", e.value)
    assert.are.equal(r2, e.revision)
    assert.are.equal("PUT", e.operation)
    assert.is_true(e.created_ns > 0)
    -- an older revision
    local old = assert(kv:get("player.1.pos", r1))
    assert.are.equal("1,2", old.value)
    assert.are.equal(r1, old.revision)
  end)

  it("stores binary values and empty values", function()
    local blob = "\0\1\2\255zero\0end"
    kv:put("blob", blob)
    assert.are.equal(blob, kv:get("blob").value)
    kv:put("empty", "")
    assert.are.equal("", kv:get("empty").value)
    kv:put("nil-value")
    assert.are.equal("", kv:get("nil-value").value)
  end)

  it("returns nil, message, 'not found' for a missing key", function()
    local e, err, code = kv:get("nobody")
    assert.is_nil(e)
    assert.matches("^ember: ", err)
    assert.are.equal("not found", code)
    local r1 = kv:put("k", "v")
    local e2, _, code2 = kv:get("k", r1 + 100)
    assert.is_nil(e2)
    assert.are.equal("not found", code2)
  end)

  it("create only when the key has no value", function()
    local r = assert(kv:create("lock", "me"))
    local again, err, code = kv:create("lock", "you")
    assert.is_nil(again)
    assert.matches("^ember: ", err)
    assert.are.equal("wrong sequence", code)
    assert.are.equal("me", kv:get("lock").value)
    -- after a delete the key can be created again
    assert.is_true(kv:delete("lock"))
    local r2 = assert(kv:create("lock", "you"))
    assert.is_true(r2 > r)
    assert.are.equal("you", kv:get("lock").value)
  end)

  it("update is a compare-and-set on the revision", function()
    local r1 = kv:put("score", "10")
    local r2 = assert(kv:update("score", "11", r1))
    assert.is_true(r2 > r1)
    -- a stale revision loses
    local bad, err, code = kv:update("score", "99", r1)
    assert.is_nil(bad)
    assert.matches("^ember: ", err)
    assert.are.equal("wrong sequence", code)
    assert.are.equal("11", kv:get("score").value)
    -- a key that never existed has no revision to match
    local none, _, code2 = kv:update("nothing", "x", 1)
    assert.is_nil(none)
    assert.are.equal("wrong sequence", code2)
    assert.has_error(function() kv:update("score", "x") end)
  end)

  it("put_async calls back inside conn:poll once the value is durable", function()
    for _, storage in ipairs{ "memory", "file" } do
      local b = assert(js:create_key_value{ bucket = "async_" .. storage, storage = storage })
      local revs, order = {}, {}
      for i = 1, 200 do
        assert.is_true(b:put_async("k." .. (i % 10), "v" .. i, function(rev, err, code)
          assert(rev, err)
          revs[i] = rev
          order[#order + 1] = i
        end))
      end
      -- the values are there at once; the callbacks wait for conn:poll
      assert.are.equal("v200", b:get("k.0").value)
      assert.is_true(poll_until(conn, function() return #order == 200 end, 10000))
      for i = 1, 200 do
        assert.are.equal(i, order[i])          -- in the order written
        if i > 1 then assert.is_true(revs[i] > revs[i - 1]) end
      end
      assert.are.equal(revs[200], b:get("k.0").revision)
    end
  end)

  it("put_async reports errors", function()
    -- before writing: raised (misuse) or nil, err, code (outcomes), no callback
    local called = false
    local function cb() called = true end
    assert.has_error(function() kv:put_async("bad key", "x", cb) end)
    assert.has_error(function() kv:put_async("k", "x") end)      -- no function
    local small = assert(js:create_key_value{ bucket = "small", max_value_size = 4 })
    assert.is_true(js:delete_key_value("small"))
    local ok, err, code = small:put_async("k", "x", cb)
    assert.is_nil(ok)
    assert.matches("bucket not found", err)
    assert.are.equal("not found", code)
    -- refused by the store: the callback hears it
    small = assert(js:create_key_value{ bucket = "small2", max_value_size = 4 })
    local got
    assert.is_true(small:put_async("k", "12345", function(rev, e, c) got = { rev, e, c } end))
    assert.is_true(poll_until(conn, function() return got ~= nil end))
    assert.is_nil(got[1])
    assert.matches("^ember: ", got[2])
    assert.are.equal("limit", got[3])
    assert.is_false(called)
  end)

  it("put_async callbacks of a closed connection never run", function()
    local c2 = srv:connect()
    local b = assert(c2:jetstream():create_key_value{ bucket = "closing" })
    local ran = 0
    for i = 1, 100 do
      b:put_async("k" .. i, "v", function() ran = ran + 1 end)
    end
    c2:close()
    for _ = 1, 20 do conn:poll(5) end
    assert.are.equal(0, ran)
    -- what was acknowledged before the close or not, the values are in the bucket
    local again = assert(js:key_value("closing"))
    assert.are.equal(100, #assert(again:keys()))
  end)

  it("raises on invalid keys", function()
    for _, key in ipairs{ "bad key", ".lead", "trail.", "a..b", "star*", "gt>", "", "a\0b" } do
      assert.has_error(function() kv:put(key, "x") end, nil, "key " .. ("%q"):format(key))
    end
    local ok, err = pcall(kv.put, kv, "bad key", "x")
    assert.is_false(ok)
    assert.matches('^ember: invalid key "bad key"', err)
    assert.has_error(function() kv:get("a b") end)
    assert.has_error(function() kv:delete("a b") end)
    assert.has_error(function() kv:history("a b") end)
    assert.has_error(function() kv:put(nil, "x") end)
    -- the allowed characters
    assert(kv:put("Az09-/_=.x", "ok"))
  end)

  it("delete leaves a marker in the history; purge replaces the history", function()
    kv:put("k", "1")
    kv:put("k", "2")
    assert.is_true(kv:delete("k"))
    local e, _, code = kv:get("k")
    assert.is_nil(e)
    assert.are.equal("not found", code)
    local h = assert(kv:history("k"))
    assert.are.equal(3, #h)
    assert.are.same({ "PUT", "PUT", "DEL" }, { h[1].operation, h[2].operation, h[3].operation })
    assert.are.same({ "1", "2" }, { h[1].value, h[2].value })
    assert.is_true(h[1].revision < h[2].revision and h[2].revision < h[3].revision)
    kv:put("k", "3")
    assert.is_true(kv:purge("k"))
    local h2 = assert(kv:history("k"))
    assert.are.equal(1, #h2)
    assert.are.equal("PURGE", h2[1].operation)
    assert.is_nil(kv:get("k"))
    local none, _, code2 = kv:history("never")
    assert.is_nil(none)
    assert.are.equal("not found", code2)
  end)

  it("keeps at most `history` values per key", function()
    for i = 1, 8 do kv:put("h", tostring(i)) end
    local h = kv:history("h")
    assert.are.equal(5, #h)
    assert.are.equal("4", h[1].value)
    assert.are.equal("8", h[5].value)
  end)

  it("lists the keys that have a value, sorted", function()
    assert.are.same({}, kv:keys())
    kv:put("b", "1")
    kv:put("a", "1")
    kv:put("c.d", "1")
    kv:put("gone", "1")
    kv:delete("gone")
    kv:put("purged", "1")
    kv:purge("purged")
    assert.are.same({ "a", "b", "c.d" }, kv:keys())
  end)

  it("opens, lists and deletes buckets", function()
    kv:put("x", "1")
    local again = assert(js:key_value("game"))
    assert.are.equal("1", again:get("x").value)
    again:close()
    again:close() -- idempotent
    assert.has_error(function() again:get("x") end, "ember: bucket handle closed")
    -- creating it again with the same configuration opens it
    local same = assert(js:create_key_value{ bucket = "game", history = 5, storage = "memory" })
    assert.are.equal("1", same:get("x").value)
    local missing, err, code = js:key_value("nope")
    assert.is_nil(missing)
    assert.matches("^ember: ", err)
    assert.are.equal("not found", code)
    assert.is_true(js:delete_key_value("game"))
    local gone, _, code2 = js:key_value("game")
    assert.is_nil(gone)
    assert.are.equal("not found", code2)
    local _, _, code3 = kv:get("x")
    assert.are.equal("not found", code3)
  end)

  it("checks bucket options", function()
    assert.has_error(function() js:create_key_value{ bucket = "bad name" } end)
    assert.has_error(function() js:create_key_value{ bucket = "b", history = 65 } end)
    assert.has_error(function() js:create_key_value{ bucket = "b", history = "1" } end,
      "ember: key-value option history must be an integer")
    assert.has_error(function() js:create_key_value{ bucket = "b", storage = "disk" } end,
      'ember: key-value option storage must be one of "file", "memory"')
    assert.has_error(function() js:create_key_value{ bucket = "b", colour = "red" } end,
      'ember: unknown key-value option "colour"')
    assert.has_error(function() js:create_key_value{ history = 2 } end,
      "ember: key-value option bucket is required")
    assert.has_error(function() js:create_key_value("b") end)
  end)

  it("file buckets survive a restart", function()
    local fkv = assert(js:create_key_value{ bucket = "saved", storage = "file" })
    local rev = assert(fkv:put("level", "3"))
    srv:close()
    srv = H.server{ jetstream = true, store_dir = dir }
    local c2 = srv:connect()
    local kv2 = assert(c2:jetstream():key_value("saved"))
    local e = assert(kv2:get("level"))
    assert.are.equal("3", e.value)
    assert.are.equal(rev, e.revision)
  end)

  it("bucket handles raise once their connection is closed", function()
    local c2 = srv:connect()
    local kv2 = c2:jetstream():key_value("game")
    c2:close()
    assert.has_error(function() kv2:put("a", "b") end, "ember: connection closed")
    assert.has_error(function() c2:jetstream() end, "ember: connection closed")
  end)
end)

describe("key-value watch", function()
  local srv, conn, js, dir, kv
  before_each(function()
    srv, conn, js, dir = H.js_server()
    kv = assert(js:create_key_value{ bucket = "w", history = 3, storage = "memory" })
  end)
  after_each(function() H.close_js(srv, dir) end)

  it("delivers initial values, an end marker, then changes: only inside poll", function()
    kv:put("a", "1")
    kv:put("b", "1")
    kv:put("a", "2")
    local seen, ended = {}, 0
    local w = kv:watch(function(e, watcher)
      if e == nil then ended = ended + 1; return end
      seen[#seen + 1] = e.key .. "=" .. e.value .. ":" .. e.operation
      assert.is_not_nil(watcher)
    end)
    assert.matches("active", tostring(w))
    assert.are.equal(0, #seen) -- nothing runs outside poll
    assert.is_true(poll_until(conn, function() return ended == 1 end))
    table.sort(seen)
    assert.are.same({ "a=2:PUT", "b=1:PUT" }, seen)
    seen = {}
    kv:put("c", "3")
    kv:delete("b")
    kv:purge("a")
    assert.is_true(poll_until(conn, function() return #seen == 3 end))
    assert.are.same({ "c=3:PUT", "b=:DEL", "a=:PURGE" }, seen)
    assert.are.equal(1, ended)
    assert.is_true(w:is_active())
    w:stop()
    w:stop() -- idempotent
    assert.is_false(w:is_active())
    kv:put("d", "4")
    conn:poll(50)
    assert.are.equal(3, #seen)
  end)

  it("ends the initial values at once on an empty bucket", function()
    local events = {}
    kv:watch(function(e) events[#events + 1] = e and e.key or "END" end)
    assert.is_true(poll_until(conn, function() return #events == 1 end))
    assert.are.same({ "END" }, events)
    kv:put("x", "1")
    assert.is_true(poll_until(conn, function() return #events == 2 end))
    assert.are.same({ "END", "x" }, events)
  end)

  it("filters keys with wildcards", function()
    local got = {}
    kv:watch("player.*.score", function(e) if e then got[#got + 1] = e.key end end)
    kv:put("player.1.score", "1")
    kv:put("player.1.pos", "1,1")
    kv:put("player.2.score", "5")
    assert.is_true(poll_until(conn, function() return #got == 2 end))
    conn:poll(20)
    assert.are.same({ "player.1.score", "player.2.score" }, got)
    assert.has_error(function() kv:watch("bad key", function() end) end)
    assert.has_error(function() kv:watch("x") end)
  end)

  it("reports callback errors through on_error and goes on", function()
    local errs, n = {}, 0
    conn.on_error = function(err, obj) errs[#errs + 1] = { err = err, obj = obj } end
    local w = kv:watch(function(e)
      if e and e.value == "bad" then error("watch broke") end
      if e then n = n + 1 end
    end)
    kv:put("k", "bad")
    kv:put("k", "good")
    assert.is_true(poll_until(conn, function() return n == 1 end))
    assert.are.equal(1, #errs)
    assert.matches("kv_spec.lua:%d+: watch broke", errs[1].err)
    assert.matches("stack traceback:", errs[1].err)
    assert.are.equal(w, errs[1].obj)
  end)

  it("can be stopped from inside its callback, and with <close>", function()
    local n = 0
    kv:watch(function(e, w) if e then n = n + 1; w:stop() end end)
    kv:put("a", "1")
    kv:put("a", "2")
    assert.is_true(poll_until(conn, function() return n == 1 end))
    conn:poll(50)
    assert.are.equal(1, n)
    local m = 0
    do
      local w <close> = kv:watch(function(e) if e then m = m + 1 end end)
      assert.is_true(poll_until(conn, function() return m == 1 end)) -- a=2
    end
    kv:put("a", "3")
    conn:poll(50)
    assert.are.equal(1, m)
  end)

  it("stops with its connection; a dropped watcher keeps running until then", function()
    local c2 = srv:connect()
    local kv2 = c2:jetstream():key_value("w")
    local n = 0
    local w = kv2:watch(function(e) if e then n = n + 1 end end)
    local weak = setmetatable({ w }, { __mode = "v" })
    w = nil
    H.gc()
    assert.is_not_nil(weak[1]) -- anchored while active
    kv:put("z", "1")
    assert.is_true(poll_until(c2, function() return n == 1 end))
    c2:close()
    assert.is_false(weak[1]:is_active())
    kv:put("z", "2") -- nobody left to deliver to
    H.gc()
    assert.are.equal(1, n)
  end)

  it("runs no callback when the server closes during a watch", function()
    local n = 0
    kv:watch(function() n = n + 1 end)
    srv:close()
    assert.are.equal(0, n)
    H.gc()
  end)
end)

describe("key-value without JetStream", function()
  it("raises: JetStream is not enabled", function()
    local srv = H.server()
    local js = srv:connect():jetstream()
    assert.has_error(function() js:create_key_value{ bucket = "x" } end)
    local ok, err = pcall(js.key_value, js, "x")
    assert.is_false(ok)
    assert.matches("JetStream not enabled", err)
    assert.matches("jetstream = true", err)
    srv:close()
  end)
end)
