local H = require "helper"
local ember = H.ember

local function weak(v) return setmetatable({ v }, { __mode = "v" }) end

describe("close and garbage collection", function()
  local srv
  before_each(function() srv = H.server() end)
  after_each(function() srv:close() end)

  it("conn:close is idempotent and shared by __close", function()
    local c = srv:connect()
    assert.is_false(c:is_closed())
    c:close()
    c:close()
    assert.is_true(c:is_closed())
    assert.matches("closed", tostring(c))
    do
      local c2 <close> = srv:connect()
      c2:publish("x", "y")
    end
    assert.are.equal(0, srv:stats().connections)
  end)

  it("a closed connection raises on use", function()
    local c = srv:connect()
    local sub = c:subscribe("s")
    c:close()
    assert.has_error(function() c:publish("a", "b") end, "ember: connection closed")
    assert.has_error(function() c:subscribe("a", function() end) end, "ember: connection closed")
    assert.has_error(function() c:request("a", "b", 10) end, "ember: connection closed")
    assert.has_error(function() c:poll(0) end, "ember: connection closed")
    assert.has_error(function() c:fd() end, "ember: connection closed")
    assert.has_error(function() sub:subject() end, "ember: subscription closed")
    assert.is_false(sub:is_valid())
    local m, _, code = sub:next_msg(0)
    assert.is_nil(m)
    assert.are.equal("closed", code)
    sub:unsubscribe() -- harmless
  end)

  it("collects a dropped connection and closes it", function()
    do
      local c = srv:connect()
      c:subscribe("x", function() end)
    end
    assert.are.equal(1, srv:stats().connections)
    H.gc()
    assert.are.equal(0, srv:stats().connections)
    assert.are.equal(0, srv:stats().subscriptions)
  end)

  it("collects a connection whose callback captures it", function()
    local w
    do
      local c = srv:connect()
      c:subscribe("x", function(m) c:publish("y", m.data) end)
      c.on_error = function() c:close() end
      w = weak(c)
    end
    H.gc()
    assert.is_nil(w[1])
    assert.are.equal(0, srv:stats().connections)
  end)

  it("keeps a dropped callback subscription alive while the connection is", function()
    local c = srv:connect()
    local n = 0
    c:subscribe("keep", function() n = n + 1 end) -- result dropped
    H.gc()
    c:publish("keep", "x")
    c:poll(0)
    assert.are.equal(1, n)
    assert.are.equal(1, srv:stats().subscriptions)
  end)

  it("unsubscribes a dropped callback-less subscription when collected", function()
    local c = srv:connect()
    do c:subscribe("dropped") end
    assert.are.equal(1, srv:stats().subscriptions)
    H.gc()
    assert.are.equal(0, srv:stats().subscriptions)
  end)

  it("releases the callback on unsubscribe", function()
    local c = srv:connect()
    local fn = function() end
    local w = weak(fn)
    local sub = c:subscribe("r", fn)
    fn = nil
    H.gc()
    assert.is_not_nil(w[1])
    sub:unsubscribe()
    H.gc()
    assert.is_nil(w[1])
  end)

  it("releases callbacks and subscriptions on close", function()
    local c = srv:connect()
    local fn = function() end
    local wf = weak(fn)
    local ws = weak(c:subscribe("r", fn))
    fn = nil
    H.gc()
    assert.is_not_nil(wf[1])
    assert.is_not_nil(ws[1])
    c:close()
    H.gc()
    assert.is_nil(wf[1])
    assert.is_nil(ws[1])
  end)

  it("collects messages and releases what they hold", function()
    local c = srv:connect()
    local w = setmetatable({}, { __mode = "v" })
    c:subscribe("m", function(m) w[#w + 1] = m end)
    for _ = 1, 100 do c:publish("m", string.rep("x", 1000)) end
    c:poll(0)
    assert.are.equal(100, #w)
    H.gc()
    assert.is_nil(next(w))
  end)

  it("messages outlive their connection", function()
    local c = srv:connect()
    local kept
    c:subscribe("m", function(m) kept = m end)
    c:publish("m", "data", "a.reply")
    c:poll(0)
    c:close()
    assert.are.equal("data", kept.data)
    assert.has_error(function() kept:respond("x") end, "ember: connection closed")
  end)

  it("closes a connection from inside its own callback after the poll", function()
    local c = srv:connect()
    local n = 0
    c:subscribe("c", function()
      n = n + 1
      c:close()
      assert.is_true(c:is_closed())
      assert.has_error(function() c:publish("c", "x") end, "ember: connection closed")
    end)
    for _ = 1, 5 do c:publish("c", "x") end
    assert.are.equal(5, c:poll(0))
    assert.are.equal(1, n) -- the rest were dropped by the close
    assert.is_true(c:is_closed())
    assert.are.equal(0, srv:stats().connections)
  end)

  it("server:close closes its connections", function()
    local s2 = H.server()
    local c = s2:connect()
    local sub = c:subscribe("x")
    s2:close()
    assert.is_true(c:is_closed())
    assert.has_error(function() c:publish("x", "y") end, "ember: connection closed")
    assert.is_nil((sub:next_msg(0)))
    c:close()
  end)

  it("server:close from inside a callback is finished after the poll", function()
    local s2 = H.server()
    local c = s2:connect()
    local other = s2:connect()
    c:subscribe("stop", function() s2:close() end)
    c:publish("stop", "")
    assert.are.equal(1, c:poll(0))
    assert.is_true(s2:is_closed())
    assert.is_true(c:is_closed())
    assert.is_true(other:is_closed())
  end)

  it("after server:shutdown the connections raise 'closed'", function()
    local s2 = H.server()
    local c = s2:connect()
    s2:shutdown()
    assert.is_true(c:is_closed())
    assert.has_error(function() c:publish("x", "y") end)
    s2:close()
  end)

  it("server:shutdown from inside a poll callback", function()
    local s2 = H.server()
    local c = s2:connect()
    c:subscribe("down", function() s2:shutdown() end)
    c:publish("down", "")
    c:publish("down", "")
    c:poll(0)
    assert.is_true(c:is_closed())
    s2:close()
  end)

  it("a collected server shuts down", function()
    local w
    do
      local s2 = H.server{ tcp = true }
      local c = s2:connect()
      c:subscribe("x", function() end)
      w = weak(s2)
    end
    H.gc()
    assert.is_nil(w[1])
  end)

  it("lua_close with everything still open exits cleanly", function()
    local ok, status, out, err = H.run_child([[
      local ember = require "ember"
      local srv = ember.server{ port = -1, host = "127.0.0.1" }
      local c1, c2 = srv:connect(), srv:connect()
      KEEP = { srv, c1, c2 }
      c1:subscribe("a", function(m) KEEP[#KEEP + 1] = m end)
      c2:subscribe("a")
      c2:subscribe("svc", function(m) m:respond("ok") end)
      c1:publish("a", "x")
      c1:poll(0)
      assert(c1:request("svc", "q", 1000).data == "ok")
      c1:publish("a", "pending, never polled")
      print("done")
    ]])
    assert.are.equal("", err)
    assert.is_true(ok, "exit " .. tostring(status))
    assert.are.equal("done\n", out)
  end)

  it("many servers and connections come and go", function()
    for _ = 1, 20 do
      local s2 = H.server()
      for _ = 1, 5 do
        local c = s2:connect()
        c:subscribe("x", function() end)
        c:publish("x", "y")
      end
      if math.random() < 0.5 then s2:close() end
    end
    H.gc()
  end)
end)
