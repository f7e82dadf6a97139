local H = require "helper"
local ember = H.ember

describe("publish / subscribe", function()
  local srv, conn
  before_each(function()
    srv = H.server()
    conn = srv:connect()
  end)
  after_each(function()
    srv:close()
  end)

  it("delivers only inside poll, on this thread", function()
    local got = {}
    conn:subscribe("game.pos.*", function(msg) got[#got + 1] = msg.subject .. "=" .. msg.data end)
    conn:publish("game.pos.7", "x=1,y=2")
    conn:publish("game.pos.8", "x=3,y=4")
    conn:publish("game.other", "nope")
    assert.are.equal(0, #got)
    assert.are.equal(2, conn:poll(0))
    assert.are.same({ "game.pos.7=x=1,y=2", "game.pos.8=x=3,y=4" }, got)
    assert.are.equal(0, conn:poll(0))
  end)

  it("passes msg and sub to the callback", function()
    local seen_sub
    local sub = conn:subscribe("a.b", function(msg, s)
      seen_sub = s
      assert.are.equal("a.b", msg.subject)
      assert.is_nil(msg.reply)
      assert.is_nil(msg.headers)
      assert.is_nil(msg.status)
    end)
    conn:publish("a.b", "")
    conn:poll(0)
    assert.are.equal(sub, seen_sub)
    assert.are.equal("a.b", sub:subject())
  end)

  it("matches * and > wildcards", function()
    local n1, n2 = 0, 0
    conn:subscribe("w.*.x", function() n1 = n1 + 1 end)
    conn:subscribe("w.>", function() n2 = n2 + 1 end)
    conn:publish("w.a.x", "1")
    conn:publish("w.a.y", "2")
    conn:publish("w.a.x.z", "3")
    conn:poll(0)
    assert.are.equal(1, n1)
    assert.are.equal(3, n2)
  end)

  it("spreads a queue group: each message to one member", function()
    local a, b, plain = 0, 0, 0
    conn:subscribe("work", function() a = a + 1 end, "workers")
    conn:subscribe("work", function() b = b + 1 end, "workers")
    conn:subscribe("work", function() plain = plain + 1 end)
    for i = 1, 100 do conn:publish("work", tostring(i)) end
    conn:poll(0)
    assert.are.equal(100, a + b)
    assert.are.equal(100, plain)
  end)

  it("carries binary data, empty payloads and the reply subject", function()
    local msgs = {}
    conn:subscribe("bin", function(m) msgs[#msgs + 1] = m end)
    local blob = "a\0b\0\255\1"
    conn:publish("bin", blob, "reply.to")
    conn:publish("bin")
    conn:publish("bin", "")
    conn:publish("bin", 42)
    conn:poll(0)
    assert.are.equal(4, #msgs)
    assert.are.equal(blob, msgs[1].data)
    assert.are.equal(6, #msgs[1].data)
    assert.are.equal("reply.to", msgs[1].reply)
    assert.are.equal("", msgs[2].data)
    assert.are.equal("", msgs[3].data)
    assert.are.equal("42", msgs[4].data)
    assert.matches("ember.msg %(bin, 6 bytes%)", tostring(msgs[1]))
  end)

  it("sends headers: single values and lists, in order", function()
    local m
    conn:subscribe("h", function(msg) m = msg end)
    conn:publish("h", "body", nil, { ["X-One"] = "1", ["X-Many"] = { "a", "b", "c" }, Num = 7 })
    conn:poll(0)
    assert.are.equal("body", m.data)
    local h = m.headers
    assert.are.equal("1", h["X-One"])
    assert.are.same({ "a", "b", "c" }, h["X-Many"])
    assert.are.equal("7", h.Num)
    assert.are.equal("a", m:header("X-Many"))
    assert.are.same({ "a", "b", "c" }, m:header_values("X-Many"))
    assert.are.same({}, m:header_values("missing"))
    assert.is_nil(m:header("missing"))
    assert.is_nil(m:header("x-one")) -- case-sensitive, as nats.go
  end)

  it("sends an empty header table as a header-only message", function()
    local m
    conn:subscribe("h0", function(msg) m = msg end)
    conn:publish("h0", "x", nil, {})
    conn:poll(0)
    assert.are.equal("x", m.data)
  end)

  it("rejects bad headers", function()
    assert.has_error(function() conn:publish("h", "x", nil, { [1] = "v" } ) end,
      "ember: header keys must be strings")
    assert.has_error(function() conn:publish("h", "x", nil, { ["bad key"] = "v" }) end,
      'ember: header "bad key": invalid header key')
    assert.has_error(function() conn:publish("h", "x", nil, { K = "a\r\nb" }) end)
    assert.has_error(function() conn:publish("h", "x", nil, { K = true }) end,
      'ember: header "K": value must be a string or a list of strings')
    assert.has_error(function() conn:publish("h", "x", nil, "K: v") end)
  end)

  it("raises on invalid subjects and queue names", function()
    assert.has_error(function() conn:publish("bad subject", "x") end,
      'ember: invalid publish subject "bad subject"')
    assert.has_error(function() conn:publish("a.*", "x") end,
      'ember: invalid publish subject "a.*"')
    assert.has_error(function() conn:publish("", "x") end)
    assert.has_error(function() conn:publish("a..b", "x") end)
    assert.has_error(function() conn:publish("a\0b", "x") end, "ember: invalid subject (embedded NUL)")
    assert.has_error(function() conn:publish("ok", "x", "bad reply") end,
      'ember: invalid reply subject "bad reply"')
    assert.has_error(function() conn:subscribe("a..b", function() end) end,
      'ember: invalid subject "a..b"')
    assert.has_error(function() conn:subscribe("a.>.b") end)
    assert.has_error(function() conn:subscribe("q", function() end, "bad queue") end,
      'ember: invalid queue name "bad queue"')
    assert.has_error(function() conn:subscribe("q", "not a function") end)
    assert.has_error(function() conn:publish(nil, "x") end)
  end)

  it("raises on payloads over max_payload", function()
    local s2 = H.server{ max_payload = 1024 }
    local c2 = s2:connect()
    c2:publish("p", string.rep("x", 1024))
    assert.has_error(function() c2:publish("p", string.rep("x", 1025)) end,
      "ember: maximum payload exceeded: 1025 > 1024")
    s2:close()
  end)

  it("stops delivery on unsubscribe (idempotent), also from inside the callback", function()
    local n = 0
    local sub = conn:subscribe("u", function(_, s)
      n = n + 1
      if n == 3 then s:unsubscribe() end
    end)
    for i = 1, 10 do conn:publish("u", "x") end
    conn:poll(0)
    assert.are.equal(3, n)
    assert.is_false(sub:is_valid())
    sub:unsubscribe()
    sub:close()
    conn:publish("u", "x")
    conn:poll(0)
    assert.are.equal(3, n)
  end)

  it("closes a subscription with <close>", function()
    local n = 0
    do
      local sub <close> = conn:subscribe("scoped", function() n = n + 1 end)
      conn:publish("scoped", "1")
      conn:poll(0)
    end
    conn:publish("scoped", "2")
    conn:poll(0)
    assert.are.equal(1, n)
  end)

  it("reads callback-less subscriptions with next_msg", function()
    local sub = conn:subscribe("q.>")
    conn:publish("q.a", "one", "r.1")
    conn:publish("q.b", "two")
    local m1 = sub:next_msg(100)
    assert.are.equal("q.a", m1.subject)
    assert.are.equal("one", m1.data)
    assert.are.equal("r.1", m1.reply)
    assert.are.equal("two", sub:next_msg().data)
    local none, err, code = sub:next_msg(20)
    assert.is_nil(none)
    assert.are.equal("ember: no message within 20 ms", err)
    assert.are.equal("timeout", code)
    assert.are.equal(0, sub:pending())
    conn:publish("q.c", "three")
    assert.are.equal(1, sub:pending())
    sub:unsubscribe()
    local m, err2, code2 = sub:next_msg(0)
    assert.is_nil(m)
    assert.matches("closed", err2)
    assert.are.equal("closed", code2)
  end)

  it("next_msg is not for callback subscriptions", function()
    local sub = conn:subscribe("cb", function() end)
    assert.has_error(function() sub:next_msg(0) end,
      "ember: subscription has a callback: use conn:poll()")
  end)

  it("callback-less queue subscriptions", function()
    local s1 = conn:subscribe("jobs", nil, "g")
    local s2 = conn:subscribe("jobs", nil, "g")
    for i = 1, 10 do conn:publish("jobs", tostring(i)) end
    local n = 0
    for _, s in ipairs{ s1, s2 } do
      while s:next_msg(0) do n = n + 1 end
    end
    assert.are.equal(10, n)
  end)

  it("poll waits up to its timeout, and stops at max", function()
    local t0 = ember.clock()
    assert.are.equal(0, conn:poll(50))
    local waited = ember.clock() - t0
    assert.is_true(waited >= 0.04, "waited " .. waited)
    local n = 0
    conn:subscribe("many", function() n = n + 1 end)
    for i = 1, 1000 do conn:publish("many", "x") end
    local ran = conn:poll(0, 300)
    assert.is_true(ran >= 300 and ran < 1000, "ran " .. ran)
    assert.are.equal(1000 - ran, conn:poll(0))
    assert.are.equal(1000, n)
    assert.has_error(function() conn:poll(0, 0) end)
  end)

  it("exposes a pollable descriptor", function()
    local fd = conn:fd()
    assert.are.equal("number", type(fd))
    assert.is_true(fd >= 0)
  end)

  it("messages published between connections", function()
    local other = srv:connect{ name = "other" }
    local got
    other:subscribe("x.y", function(m) got = m.data end)
    conn:publish("x.y", "hello")
    assert.are.equal(1, other:poll(0))
    assert.are.equal("hello", got)
    other:close()
  end)

  it("honours no_echo", function()
    local quiet = srv:connect{ no_echo = true }
    local n = 0
    quiet:subscribe("echo", function() n = n + 1 end)
    quiet:publish("echo", "self")
    conn:publish("echo", "other")
    quiet:poll(0)
    assert.are.equal(1, n)
    assert.has_error(function() srv:connect{ bogus = 1 } end, 'ember: unknown connection option "bogus"')
  end)

  it("keeps messages usable after the callback returns", function()
    local kept
    conn:subscribe("keep", function(m) kept = m end, nil)
    conn:publish("keep", "still here", nil, { A = "b" })
    conn:poll(0)
    H.gc()
    assert.are.equal("still here", kept.data)
    assert.are.equal("b", kept.headers.A)
  end)

  it("runs callbacks that publish to themselves without unbounded recursion", function()
    local n = 0
    conn:subscribe("loop", function(m)
      n = n + 1
      if n < 600 then conn:publish("loop", "again") end
    end)
    conn:publish("loop", "start")
    -- each poll runs what was pending when it looked: one message here
    assert.are.equal(1, conn:poll(0))
    local total, polls = 1, 1
    repeat
      local ran = conn:poll(0)
      total, polls = total + ran, polls + 1
    until ran == 0
    assert.are.equal(600, n)
    assert.are.equal(600, total)
    assert.are.equal(601, polls)
  end)
end)
