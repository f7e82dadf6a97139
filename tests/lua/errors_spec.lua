local H = require "helper"

describe("errors inside callbacks", function()
  local srv, conn
  before_each(function()
    srv = H.server()
    conn = srv:connect()
  end)
  after_each(function() srv:close() end)

  it("go to conn.on_error with a traceback, and the poll goes on", function()
    local errors, got = {}, {}
    conn.on_error = function(err, sub) errors[#errors + 1] = { err = err, sub = sub } end
    local bad = conn:subscribe("e", function(m)
      if m.data == "boom" then error("kaboom") end
      got[#got + 1] = m.data
    end)
    conn:subscribe("e", function(m) got[#got + 1] = "second:" .. m.data end)
    conn:publish("e", "1")
    conn:publish("e", "boom")
    conn:publish("e", "2")
    assert.are.equal(6, conn:poll(0))
    assert.are.same({ "1", "second:1", "second:boom", "2", "second:2" }, got)
    assert.are.equal(1, #errors)
    assert.matches("errors_spec.lua:%d+: kaboom", errors[1].err)
    assert.matches("stack traceback:", errors[1].err)
    assert.are.equal(bad, errors[1].sub)
  end)

  it("report non-string error values", function()
    local errs = {}
    conn.on_error = function(err) errs[#errs + 1] = err end
    conn:subscribe("t", function() error(setmetatable({}, { __tostring = function() return "custom" end })) end)
    conn:subscribe("t", function() error({ code = 1 }) end)
    conn:subscribe("t", function() error() end)
    conn:publish("t", "")
    conn:poll(0)
    assert.are.equal(3, #errs)
    table.sort(errs)
    assert.matches("^%(error object is a nil value%)", errs[1])
    assert.matches("^%(error object is a table value%)", errs[2])
    assert.matches("^custom", errs[3])
  end)

  it("on_error can be replaced and removed; it is the only field", function()
    local n = 0
    conn:subscribe("r", function() error("x") end)
    conn.on_error = function() n = n + 1 end
    conn.on_error = function() n = n + 10 end
    conn:publish("r", "")
    conn:poll(0)
    assert.are.equal(10, n)
    conn.on_error = nil
    assert.has_error(function() return conn.on_error end, "ember: conn.on_error can be assigned, not read")
    assert.has_error(function() conn.on_error = 42 end)
    assert.has_error(function() conn.something = 1 end,
      'ember: connections have no field "something" (only on_error can be set)')
    assert.is_nil(conn.something)
  end)

  it("are written to stderr without a handler, and to stderr too when the handler fails", function()
    local ok, status, out, err = H.run_child([[
      local ember = require "ember"
      local srv = ember.server{ dont_listen = true }
      local c = srv:connect()
      local n = 0
      c:subscribe("x", function(m) n = n + 1; if m.data == "bad" then error("no handler here") end end)
      c:publish("x", "bad"); c:publish("x", "good")
      c:poll(0)
      c.on_error = function(e) error("handler broke") end
      c:publish("x", "bad")
      c:poll(0)
      print(n)
      srv:close()
    ]])
    assert.is_true(ok, "exit " .. tostring(status) .. ": " .. err)
    assert.are.equal("3\n", out)
    assert.matches("ember: error in subscription callback: [^\n]*: no handler here\nstack traceback:", err)
    assert.matches("ember: error in on_error handler: [^\n]*handler broke", err)
  end)

  it("from a responder make the request time out, not fail", function()
    local errs = 0
    conn.on_error = function() errs = errs + 1 end
    conn:subscribe("svc.broken", function() error("broken responder") end)
    local reply, _, code = conn:request("svc.broken", "x", 50)
    assert.is_nil(reply)
    assert.are.equal("timeout", code)
    assert.are.equal(1, errs)
  end)
end)

describe("slow consumers", function()
  local srv
  before_each(function() srv = H.server() end)
  after_each(function() srv:close() end)

  it("are reported through on_error at the next poll", function()
    local c = srv:connect{ pending_msgs_limit = 10 }
    local errs, n = {}, 0
    c.on_error = function(err, sub) errs[#errs + 1] = err end
    c:subscribe("flood", function() n = n + 1 end)
    for _ = 1, 25 do c:publish("flood", "x") end
    c:poll(0)
    assert.are.equal(10, n)
    assert.are.equal(1, #errs)
    assert.matches("^ember: slow consumer: 15 messages dropped", errs[1])
  end)

  it("next_msg says so once, then goes on", function()
    local c = srv:connect{ pending_msgs_limit = 5 }
    local sub = c:subscribe("flood")
    for _ = 1, 8 do c:publish("flood", "x") end
    local pending, dropped = sub:pending()
    assert.are.equal(5, pending)
    assert.are.equal(3, dropped)
    local m, err, code = sub:next_msg(0)
    assert.is_nil(m)
    assert.matches("slow consumer", err)
    assert.are.equal("slow consumer", code)
    local n = 0
    while sub:next_msg(0) do n = n + 1 end
    assert.are.equal(5, n)
  end)
end)
