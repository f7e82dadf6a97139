local H = require "helper"
local ember = H.ember

describe("ember module", function()
  it("has a version and the NATS version it advertises", function()
    assert.are.equal("string", type(ember.version))
    assert.matches("^%d+%.%d+%.%d+", ember.version)
    assert.matches("^2%.", ember.nats_version)
  end)

  it("has a monotonic clock in seconds", function()
    local a = ember.clock()
    local b = ember.clock()
    assert.is_true(b >= a)
  end)
end)

describe("ember.server", function()
  it("starts without a listener (dont_listen)", function()
    local srv = ember.server{ dont_listen = true, server_name = "lua-test" }
    assert.is_true(srv:ready(1000))
    assert.is_nil(srv:client_url())
    assert.are.equal(0, srv:port())
    assert.are.equal("lua-test", srv:name())
    assert.are.equal("string", type(srv:id()))
    assert.matches("no listener", tostring(srv))
    srv:close()
  end)

  it("listens on a free port with port = -1", function()
    local srv = ember.server{ port = -1, host = "127.0.0.1", logging = false }
    local url = srv:client_url()
    assert.matches("^nats://127%.0%.0%.1:%d+$", url)
    assert.is_true(srv:port() > 0)
    assert.are.equal(url, "nats://127.0.0.1:" .. srv:port())
    assert.matches(url, tostring(srv), 1, true)
    srv:close()
  end)

  it("reports stats", function()
    local srv = H.server()
    local c = srv:connect()
    c:subscribe("a", function() end)
    c:publish("a", "x")
    c:poll(0)
    local st = srv:stats()
    assert.are.equal(1, st.connections)
    assert.are.equal(1, st.subscriptions)
    assert.are.equal(1, st.in_msgs)
    assert.are.equal(1, st.out_msgs)
    srv:close()
  end)

  it("rejects unknown options and wrong types", function()
    assert.has_error(function() ember.server{ dont_listen = true, prot = 4222 } end,
      'ember: unknown server option "prot"')
    assert.has_error(function() ember.server{ port = "4222" } end,
      "ember: server option port must be an integer")
    assert.has_error(function() ember.server{ dont_listen = 1 } end,
      "ember: server option dont_listen must be a boolean")
    assert.has_error(function() ember.server{ dont_listen = true, logging = "loud" } end)
    assert.has_error(function() ember.server("x") end)
  end)

  it("fails to start on a port in use, with the reason", function()
    local a = ember.server{ port = -1, host = "127.0.0.1" }
    local ok, err = pcall(ember.server, { port = a:port(), host = "127.0.0.1", ready_timeout = 2000 })
    assert.is_false(ok)
    assert.matches("^ember: server not ready", err)
    a:close()
  end)

  it("accepts logging levels", function()
    local srv = ember.server{ dont_listen = true, logging = "error" }
    srv:close()
  end)

  it("shutdown and close are idempotent, also through __close and __gc", function()
    local srv = H.server()
    srv:shutdown()
    srv:shutdown()
    assert.is_false(srv:is_closed())
    srv:close()
    srv:close()
    assert.is_true(srv:is_closed())
    assert.matches("closed", tostring(srv))
    assert.has_error(function() srv:connect() end, "ember: server closed")
    assert.has_error(function() srv:client_url() end, "ember: server closed")
    do
      local s2 <close> = H.server()
      assert.is_false(s2:is_closed())
    end
    H.server() -- dropped: collected
    H.gc()
  end)

  it("cannot connect after shutdown", function()
    local srv = H.server()
    srv:shutdown()
    assert.has_error(function() srv:connect() end, "ember: server is not running")
    srv:close()
  end)

  it("has one metatable per type, protected", function()
    local srv = H.server()
    local c = srv:connect()
    local s = c:subscribe("x")
    assert.are.equal("ember", getmetatable(srv))
    assert.are.equal("ember", getmetatable(c))
    assert.are.equal("ember", getmetatable(s))
    srv:close()
  end)
end)
