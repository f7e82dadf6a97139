local H = require "helper"
local ember = H.ember

describe("server:monitor", function()
  it("returns nats-server's monitoring JSON as a table, without a port", function()
    local srv = H.server{ server_name = "lua-mon" }
    assert.is_nil(srv:monitor_url())
    assert.are.equal(0, srv:monitor_port())
    local c = srv:connect{ name = "lua-client" }
    local got = 0
    c:subscribe("mon.>", function() got = got + 1 end)
    for _ = 1, 3 do c:publish("mon.a", "hi") end
    c:poll(100)
    local v, json = srv:monitor("/varz")
    assert.are.equal("lua-mon", v.server_name)
    assert.are.equal(srv:id(), v.server_id)
    assert.are.equal(1, v.connections)
    assert.is_true(v.in_msgs >= 3)
    assert.are.equal("string", type(json))
    assert.matches('"server_name"', json)
    local cz = srv:monitor("connz?subs=1")
    assert.are.equal(1, cz.num_connections)
    local conn = cz.connections[1]
    assert.are.equal("lua-client", conn.name)
    assert.are.equal("in-process", conn.type)
    assert.are.same({ "mon.>" }, conn.subscriptions_list)
    assert.are.equal(1, srv:monitor("subsz?subs=1&test=mon.x").total)
    assert.is_true(srv:monitor("jsz").disabled)
    local h = srv:monitor("healthz")
    assert.are.equal("ok", h.status)
    assert.are.equal(200, h.status_code)
    assert.are.equal(0, srv:monitor("leafz").leafnodes)
    local ok, err = pcall(srv.monitor, srv, "connz?sort=bogus")
    assert.is_false(ok)
    assert.matches("invalid sorting option: bogus", err, 1, true)
    ok, err = pcall(srv.monitor, srv, "/nope")
    assert.is_false(ok)
    c:close()
    srv:close()
  end)

  it("serves HTTP on http_port = -1", function()
    local srv = ember.server{ port = -1, host = "127.0.0.1", http_port = -1 }
    local p = srv:monitor_port()
    assert.is_true(p > 0)
    assert.are.equal("http://127.0.0.1:" .. p, srv:monitor_url())
    assert.are.equal(p, srv:monitor("varz").http_port)
    srv:close()
  end)
end)
