local H = require "helper"
local ember = H.ember

describe("accounts (config_file, connect{ account / user })", function()
  local dir, srv
  before_each(function()
    dir = H.tmpdir()
    local f = assert(io.open(dir .. "/acc.conf", "w"))
    f:write([[
accounts {
  A: { users: [ {user: a, password: pa} ],
       exports: [ {stream: "news.>"}, {service: "svc"} ] }
  B: { users: [ {user: b, password: pb} ],
       imports: [ {stream: {account: A, subject: "news.>"}, prefix: "a"},
                  {service: {account: A, subject: "svc"}, to: "ask"} ] }
}
]])
    f:close()
    srv = ember.server{ config_file = dir .. "/acc.conf", dont_listen = true }
  end)
  after_each(function()
    srv:close()
    H.rmdir(dir)
  end)

  it("keeps accounts apart and shares what they export", function()
    local a = srv:connect{ account = "A" }
    local b = srv:connect{ user = "b", password = "pb" }
    local got_a, got_b = {}, {}
    a:subscribe("x", function(m) got_a[#got_a + 1] = m.data end)
    b:subscribe("x", function(m) got_b[#got_b + 1] = m.data end)
    b:subscribe("a.news.>", function(m) got_b[#got_b + 1] = m.subject end)
    b:publish("x", "from-b")
    a:publish("news.today", "hl")
    a:poll(0)
    b:poll(0)
    assert.are.same({}, got_a)
    assert.are.same({ "from-b", "a.news.today" }, got_b)
    a:subscribe("svc", function(m) m:respond("pong:" .. m.data) end)
    assert.are.equal("pong:hi", b:request("ask", "hi", 1000).data)
  end)

  it("refuses unknown accounts and wrong credentials", function()
    assert.has_error(function() srv:connect{ account = "NOPE" } end)
    assert.has_error(function() srv:connect{ user = "a", password = "wrong" } end)
    local ok = srv:connect{ user = "a", password = "pa", account = "A" }
    ok:close()
  end)

  it("reports config file errors", function()
    local f = assert(io.open(dir .. "/bad.conf", "w"))
    f:write("accounts {\n  $G: {}\n}\n")
    f:close()
    local ok, err = pcall(ember.server, { config_file = dir .. "/bad.conf", dont_listen = true })
    assert.is_false(ok)
    assert.matches("Reserved Account", tostring(err))
  end)
end)
