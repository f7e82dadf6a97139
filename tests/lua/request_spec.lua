local H = require "helper"
local ember = H.ember

describe("request / reply", function()
  local srv, conn
  before_each(function()
    srv = H.server()
    conn = srv:connect()
  end)
  after_each(function()
    srv:close()
  end)

  it("is answered by a Lua responder on the same connection", function()
    conn:subscribe("svc.echo", function(msg) msg:respond("echo:" .. msg.data) end)
    local reply = conn:request("svc.echo", "hi", 1000)
    assert.are.equal("echo:hi", reply.data)
    assert.matches("^_INBOX%.", reply.subject)
  end)

  it("is answered by a responder on another connection of this state", function()
    local svc = srv:connect()
    svc:subscribe("svc.add", function(msg)
      local a, b = msg.data:match("(%d+)%+(%d+)")
      svc:respond(msg, tostring(tonumber(a) + tonumber(b)))
    end)
    for i = 1, 50 do
      assert.are.equal(tostring(i + 1), conn:request("svc.add", i .. "+1", 1000).data)
    end
    svc:close()
  end)

  it("carries headers both ways", function()
    conn:subscribe("svc.h", function(msg)
      msg:respond(msg.headers["X-Q"], { ["X-A"] = { "1", "2" } })
    end)
    local reply = conn:request("svc.h", "", 1000, { ["X-Q"] = "question" })
    assert.are.equal("question", reply.data)
    assert.are.same({ "1", "2" }, reply.headers["X-A"])
  end)

  it("returns nil, message, 'no responders' when nobody listens", function()
    local reply, err, code = conn:request("nobody.home", "hi", 500)
    assert.is_nil(reply)
    assert.are.equal('ember: no responders available for request on "nobody.home"', err)
    assert.are.equal("no responders", code)
    -- also with headers
    local r2, _, code2 = conn:request("nobody.home", "hi", 500, { A = "b" })
    assert.is_nil(r2)
    assert.are.equal("no responders", code2)
  end)

  it("returns nil, message, 'timeout' when a Lua responder does not answer", function()
    conn:subscribe("svc.mute", function() end)
    local t0 = ember.clock()
    local reply, err, code = conn:request("svc.mute", "hi", 100)
    local waited = ember.clock() - t0
    assert.is_nil(reply)
    assert.are.equal('ember: request on "svc.mute" timed out after 100 ms', err)
    assert.are.equal("timeout", code)
    assert.is_true(waited >= 0.09 and waited < 2, "waited " .. waited)
  end)

  it("returns nil, message, 'timeout' when the subscriber is not a Lua callback", function()
    local sub = conn:subscribe("svc.queue") -- read with next_msg, nobody answers
    local reply, err, code = conn:request("svc.queue", "hi", 50)
    assert.is_nil(reply)
    assert.are.equal('ember: request on "svc.queue" timed out after 50 ms', err)
    assert.are.equal("timeout", code)
    local req = sub:next_msg(0)
    assert.are.equal("hi", req.data)
    assert.is_not_nil(req.reply)
  end)

  it("a late answer is dropped, the next request works", function()
    local pending = {}
    conn:subscribe("svc.late", function(msg) pending[#pending + 1] = msg end)
    assert.is_nil((conn:request("svc.late", "1", 30)))
    pending[1]:respond("late")
    local sub = conn:subscribe("svc.now", function(m) m:respond("now") end)
    assert.are.equal("now", conn:request("svc.now", "", 1000).data)
    sub:unsubscribe()
  end)

  it("can respond later, outside the callback, with the stored message", function()
    local held
    local svc = srv:connect()
    svc:subscribe("svc.defer", function(m) held = m end)
    local other = srv:connect()
    -- request from a callback-less path: publish with our own reply inbox
    local inbox = conn:subscribe("my.inbox")
    other:publish("svc.defer", "q", "my.inbox")
    svc:poll(0)
    held:respond("deferred")
    assert.are.equal("deferred", inbox:next_msg(100).data)
  end)

  it("nests: a responder may itself make a request", function()
    conn:subscribe("svc.inner", function(m) m:respond("inner:" .. m.data) end)
    conn:subscribe("svc.outer", function(m)
      local r = assert(conn:request("svc.inner", m.data, 1000))
      m:respond("outer:" .. r.data)
    end)
    assert.are.equal("outer:inner:x", conn:request("svc.outer", "x", 1000).data)
  end)

  it("a queue group of Lua responders answers once", function()
    local calls = 0
    for i = 1, 3 do
      conn:subscribe("svc.q", function(m) calls = calls + 1; m:respond("r" .. i) end, "grp")
    end
    for _ = 1, 30 do assert.is_not_nil(conn:request("svc.q", "", 1000)) end
    assert.are.equal(30, calls)
  end)

  it("respond needs a reply subject", function()
    local m
    conn:subscribe("plain", function(msg) m = msg end)
    conn:publish("plain", "x")
    conn:poll(0)
    assert.has_error(function() m:respond("y") end, "ember: message has no reply subject")
    assert.has_error(function() conn:respond(m, "y") end, "ember: message has no reply subject")
    assert.has_error(function() conn:respond("not a msg", "y") end)
  end)

  it("raises on invalid subjects", function()
    assert.has_error(function() conn:request("bad subject", "x", 100) end,
      'ember: invalid publish subject "bad subject"')
    assert.has_error(function() conn:request("a.>", "x", 100) end)
    conn:subscribe("a.>", function(m) m:respond("") end)
    assert.has_error(function() conn:request("a.*", "x", 100) end)
  end)

  local function script()
    local dir = debug.getinfo(1, "S").source:sub(2):match("^(.*)/") or "."
    return dir .. "/tcp_client.py"
  end

  it("is answered by a client on TCP (another process)", function()
    if not H.have("python3") then return pending("python3 not installed") end
    local tsrv = H.server{ tcp = true }
    local c = tsrv:connect()
    local p = assert(io.popen(string.format("python3 %q respond 127.0.0.1 %d svc.tcp",
      script(), tsrv:port()), "r"))
    assert.are.equal("ready", p:read("l"))
    local reply = assert(c:request("svc.tcp", "hello", 2000))
    assert.are.equal("tcp:hello", reply.data)
    local r2 = assert(c:request("svc.tcp", "again", 2000, { H = "v" }))
    assert.are.equal("tcp:again", r2.data)
    tsrv:close() -- ends the responder's connection, so it exits
    p:close()
  end)

  it("answers a TCP client's request from a Lua callback during poll", function()
    if not H.have("python3") then return pending("python3 not installed") end
    local tsrv = H.server{ tcp = true }
    local c = tsrv:connect()
    c:subscribe("svc.lua", function(m) m:respond("lua:" .. m.data) end)
    local out = os.tmpname()
    os.execute(string.format("python3 %q request 127.0.0.1 %d svc.lua ping > %q 2>&1 &",
      script(), tsrv:port(), out))
    local answer
    local deadline = H.ember.clock() + 10
    repeat
      c:poll(50)
      local f = io.open(out, "r")
      answer = f and f:read("a") or ""
      if f then f:close() end
    until answer:find("\n") or H.ember.clock() > deadline
    os.remove(out)
    assert.are.equal("lua:ping\n", answer)
    tsrv:close()
  end)
end)
