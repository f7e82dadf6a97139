local H = require "helper"
local ember = H.ember

describe("streams", function()
  local srv, conn, js, dir
  before_each(function()
    srv, conn, js, dir = H.js_server()
  end)
  after_each(function() H.close_js(srv, dir) end)

  local function orders(extra)
    local cfg = { name = "ORDERS", subjects = { "orders.>" }, storage = "memory" }
    for k, v in pairs(extra or {}) do cfg[k] = v end
    return cfg
  end

  it("the server options enable JetStream", function()
    assert.matches("ember.jetstream", tostring(js))
    local s2 = H.server{ jetstream = true, store_dir = dir, jetstream_domain = "edge",
                         jetstream_max_memory = 64 * 1024 * 1024, server_name = "js2" }
    s2:close()
    assert.has_error(function() H.server{ jetstream = "yes" } end,
      "ember: server option jetstream must be a boolean")
    assert.has_error(function() H.server{ store_dir = 1 } end,
      "ember: server option store_dir must be a string")
  end)

  it("add_stream returns its info; adding the same config again is fine", function()
    local info = assert(js:add_stream(orders()))
    assert.are.same({ msgs = 0, bytes = 0, last_seq = 0, num_subjects = 0, consumers = 0 },
                    { msgs = info.msgs, bytes = info.bytes, last_seq = info.last_seq,
                      num_subjects = info.num_subjects, consumers = info.consumers })
    assert.are.equal("number", math.type(info.first_seq) and "number")
    assert(js:add_stream(orders()))
    local none, err, code = js:add_stream(orders{ subjects = "other.>" })
    assert.is_nil(none)
    assert.matches("^ember: ", err)
    assert.are.equal("exists", code)
  end)

  it("publish returns the sequence; info counts the messages", function()
    js:add_stream(orders())
    assert.are.equal(1, js:publish("orders.new", "a"))
    assert.are.equal(2, js:publish("orders.new", "b"))
    local seq, dup = js:publish("orders.paid", "c")
    assert.are.equal(3, seq)
    assert.is_false(dup)
    local info = assert(js:stream_info("ORDERS"))
    assert.are.equal(3, info.msgs)
    assert.are.equal(1, info.first_seq)
    assert.are.equal(3, info.last_seq)
    assert.are.equal(2, info.num_subjects)
    assert.is_true(info.bytes > 0)
    local none, _, code = js:publish("nobody.listens", "x")
    assert.is_nil(none)
    assert.are.equal("not found", code)
  end)

  it("a stream whose subjects are omitted takes its name", function()
    assert(js:add_stream{ name = "EVENTS", storage = "memory" })
    assert.are.equal(1, js:publish("EVENTS", "x"))
  end)

  it("core subscribers see stream publishes too", function()
    js:add_stream(orders())
    local got
    conn:subscribe("orders.*", function(m) got = m.data end)
    js:publish("orders.x", "both")
    conn:poll(0)
    assert.are.equal("both", got)
  end)

  it("deduplicates on msg_id and checks expectations", function()
    js:add_stream(orders())
    local s1 = js:publish("orders.1", "x", { msg_id = "m-1" })
    local s2, dup = js:publish("orders.1", "x", { msg_id = "m-1" })
    assert.are.equal(s1, s2)
    assert.is_true(dup)
    assert.are.equal(1, js:stream_info("ORDERS").msgs)
    assert.are.equal(2, js:publish("orders.1", "y", { expected_last_seq = 1 }))
    local bad, err, code = js:publish("orders.1", "z", { expected_last_seq = 1 })
    assert.is_nil(bad)
    assert.matches("wrong last sequence", err)
    assert.are.equal("wrong sequence", code)
    assert(js:publish("orders.2", "z", { expected_stream = "ORDERS" }))
    local _, _, code2 = js:publish("orders.2", "z", { expected_stream = "OTHER" })
    assert.are.equal("wrong sequence", code2)
    assert(js:publish("orders.2", "w", { expected_last_subject_seq = 3 }))
    assert.has_error(function() js:publish("orders.1", "x", { msg_idd = "typo" }) end,
      'ember: unknown publish option "msg_idd"')
    assert.has_error(function() js:publish("orders.1", "x", { expected_last_seq = "1" }) end)
  end)

  it("stores headers and reads messages back by sequence or subject", function()
    js:add_stream(orders())
    js:publish("orders.a", "first", { headers = { ["X-Kind"] = "new", Multi = { "1", "2" } } })
    js:publish("orders.b", "second")
    js:publish("orders.a", "third")
    local m = assert(js:get_msg("ORDERS", 1))
    assert.are.equal("orders.a", m.subject)
    assert.are.equal("first", m.data)
    assert.are.equal("new", m.headers["X-Kind"])
    assert.are.same({ "1", "2" }, m:header_values("Multi"))
    assert.are.equal("ORDERS", m:header("Nats-Stream"))
    assert.are.equal("1", m:header("Nats-Sequence"))
    local meta = assert(m:metadata())
    assert.are.equal(1, meta.stream_seq)
    assert.are.equal(0, meta.consumer_seq)
    assert.is_true(meta.timestamp_ns > 0)
    local last = assert(js:get_last_msg("ORDERS", "orders.a"))
    assert.are.equal("third", last.data)
    assert.are.equal(3, last:metadata().stream_seq)
    assert.are.equal("third", js:get_last_msg("ORDERS", "orders.*").data)
    local none, err, code = js:get_msg("ORDERS", 99)
    assert.is_nil(none)
    assert.matches("^ember: ", err)
    assert.are.equal("not found", code)
    local _, _, code2 = js:get_last_msg("ORDERS", "orders.none")
    assert.are.equal("not found", code2)
    local _, _, code3 = js:get_msg("NOSTREAM", 1)
    assert.are.equal("not found", code3)
    assert.has_error(function() js:get_msg("ORDERS", -1) end)
  end)

  it("deletes and purges messages", function()
    js:add_stream(orders())
    for i = 1, 5 do js:publish(i % 2 == 0 and "orders.even" or "orders.odd", tostring(i)) end
    assert.is_true(js:delete_msg("ORDERS", 2))
    assert.are.equal("not found", select(3, js:get_msg("ORDERS", 2)))
    assert.are.equal(4, js:stream_info("ORDERS").msgs)
    assert.are.equal(3, js:purge_stream("ORDERS", "orders.odd"))
    assert.are.equal(1, js:stream_info("ORDERS").msgs)
    assert.are.equal(1, js:purge_stream("ORDERS"))
    local info = js:stream_info("ORDERS")
    assert.are.equal(0, info.msgs)
    assert.are.equal(5, info.last_seq)
  end)

  it("enforces limits: discard new refuses with 'limit'", function()
    js:add_stream(orders{ max_msgs = 2, discard = "new" })
    assert(js:publish("orders.1", "a"))
    assert(js:publish("orders.1", "b"))
    local none, err, code = js:publish("orders.1", "c")
    assert.is_nil(none)
    assert.matches("^ember: ", err)
    assert.are.equal("limit", code)
    -- discard old keeps the newest
    js:add_stream{ name = "RING", subjects = "ring", max_msgs = 2, storage = "memory" }
    for i = 1, 5 do js:publish("ring", tostring(i)) end
    local info = js:stream_info("RING")
    assert.are.equal(2, info.msgs)
    assert.are.equal(4, info.first_seq)
  end)

  it("deletes streams", function()
    js:add_stream(orders())
    assert.is_true(js:delete_stream("ORDERS"))
    local none, _, code = js:stream_info("ORDERS")
    assert.is_nil(none)
    assert.are.equal("not found", code)
    assert.are.equal("not found", select(3, js:delete_stream("ORDERS")))
  end)

  it("checks stream options", function()
    assert.has_error(function() js:add_stream{ subjects = "x" } end,
      "ember: stream option name is required")
    assert.has_error(function() js:add_stream{ name = "S", storage = "disk" } end,
      'ember: stream option storage must be one of "file", "memory"')
    assert.has_error(function() js:add_stream{ name = "S", retention = "forever" } end)
    assert.has_error(function() js:add_stream{ name = "S", max_msgs = 1.5 } end,
      "ember: stream option max_msgs must be an integer")
    assert.has_error(function() js:add_stream{ name = "S", deny_delete = 1 } end,
      "ember: stream option deny_delete must be a boolean")
    assert.has_error(function() js:add_stream{ name = "S", subjects = { 1 } } end)
    assert.has_error(function() js:add_stream{ name = "S", subject = "x" } end,
      'ember: unknown stream option "subject"')
    assert.has_error(function() js:add_stream{ name = "bad name" } end)
    assert.has_error(function() js:add_stream("S") end)
  end)

  it("file streams keep their messages across a restart", function()
    js:add_stream{ name = "DURABLE", subjects = "d.>", storage = "file" }
    js:publish("d.1", "kept")
    srv:close()
    srv = H.server{ jetstream = true, store_dir = dir }
    local js2 = srv:connect():jetstream()
    assert.are.equal("kept", assert(js2:get_msg("DURABLE", 1)).data)
    assert.are.equal(2, js2:publish("d.2", "more"))
  end)
end)

describe("consumers", function()
  local srv, conn, js, dir
  before_each(function()
    srv, conn, js, dir = H.js_server()
    assert(js:add_stream{ name = "JOBS", subjects = { "jobs.>" }, storage = "memory" })
    for i = 1, 5 do js:publish("jobs." .. (i <= 3 and "a" or "b"), "job" .. i) end
  end)
  after_each(function() H.close_js(srv, dir) end)

  it("fetch returns messages with metadata; ack removes them from pending", function()
    local name = assert(js:add_consumer("JOBS", { durable_name = "worker" }))
    assert.are.equal("worker", name)
    local msgs = assert(js:fetch("JOBS", "worker", 3, 1000))
    assert.are.equal(3, #msgs)
    for i, m in ipairs(msgs) do
      assert.are.equal("job" .. i, m.data)
      local meta = assert(m:metadata())
      assert.are.equal(i, meta.stream_seq)
      assert.are.equal(i, meta.consumer_seq)
      assert.are.equal(1, meta.num_delivered)
      assert.are.equal(5 - i, meta.num_pending)
      assert.is_true(meta.timestamp_ns > 0)
    end
    local ci = assert(js:consumer_info("JOBS", "worker"))
    assert.are.equal(3, ci.num_ack_pending)
    assert.are.equal(2, ci.num_pending)
    for _, m in ipairs(msgs) do assert.is_true(m:ack()) end
    ci = js:consumer_info("JOBS", "worker")
    assert.are.equal(0, ci.num_ack_pending)
    assert.are.equal(3, ci.ack_floor_stream_seq)
    local rest = js:fetch("JOBS", "worker", 10, 1000)
    assert.are.equal(2, #rest)
    assert.are.equal("job4", rest[1].data)
  end)

  it("fetch waits up to its timeout and returns an empty list", function()
    js:add_consumer("JOBS", { durable_name = "w", deliver_policy = "new" })
    local t0 = ember.clock()
    local msgs = assert(js:fetch("JOBS", "w", 5, 100))
    assert.are.same({}, msgs)
    assert.is_true(ember.clock() - t0 >= 0.08)
    assert.are.same({}, js:fetch("JOBS", "w")) -- default: batch 1, no wait
    assert.has_error(function() js:fetch("JOBS", "w", 0) end)
    assert.has_error(function() js:fetch("JOBS", "w", 5000) end)
  end)

  it("nak redelivers, term does not", function()
    js:add_consumer("JOBS", { durable_name = "w", filter_subject = "jobs.b" })
    local m = js:fetch("JOBS", "w", 1, 1000)[1]
    assert.are.equal("job4", m.data)
    assert.is_true(m:nak())
    local again = js:fetch("JOBS", "w", 1, 1000)[1]
    assert.are.equal("job4", again.data)
    local meta = again:metadata()
    assert.are.equal(2, meta.num_delivered)
    assert.are.equal(4, meta.stream_seq)
    -- redelivered and not yet acknowledged
    assert.are.equal(1, js:consumer_info("JOBS", "w").num_redelivered)
    assert.is_true(again:in_progress())
    assert.is_true(again:term())
    local nxt = js:fetch("JOBS", "w", 1, 1000)[1]
    assert.are.equal("job5", nxt.data)
    nxt:ack()
    assert.are.same({}, js:fetch("JOBS", "w", 1, 50))
    local ci = js:consumer_info("JOBS", "w")
    assert.are.equal(0, ci.num_ack_pending)
    assert.are.equal(0, ci.num_redelivered) -- terminated: no longer pending
  end)

  it("a negative ack with a delay waits before redelivery", function()
    js:add_consumer("JOBS", { durable_name = "d", filter_subject = "jobs.b" })
    local m = js:fetch("JOBS", "d", 1, 1000)[1]
    m:nak(300)
    local soon = js:fetch("JOBS", "d", 1, 50)
    assert.are.equal("job5", soon[1].data) -- the next one comes first
    local later = js:fetch("JOBS", "d", 1, 2000)
    assert.are.equal("job4", later[1].data)
  end)

  it("deliver policies and ack none", function()
    js:add_consumer("JOBS", { durable_name = "last", deliver_policy = "last" })
    assert.are.equal("job5", js:fetch("JOBS", "last", 5, 500)[1].data)
    js:add_consumer("JOBS", { durable_name = "from3", deliver_policy = "by_start_sequence",
                              opt_start_seq = 3, ack_policy = "none" })
    local ms = js:fetch("JOBS", "from3", 10, 500)
    assert.are.equal(3, #ms)
    assert.are.equal("job3", ms[1].data)
    assert.are.equal(0, js:consumer_info("JOBS", "from3").num_ack_pending)
    js:add_consumer("JOBS", { durable_name = "lps", deliver_policy = "last_per_subject",
                              filter_subject = "jobs.>" })
    local l = js:fetch("JOBS", "lps", 10, 500)
    assert.are.equal(2, #l)
    assert.are.same({ "job3", "job5" }, { l[1].data, l[2].data })
    -- as nats-server: last_per_subject needs a filter subject
    local ok, err = pcall(js.add_consumer, js, "JOBS", { deliver_policy = "last_per_subject" })
    assert.is_false(ok)
    assert.matches("filter subject is not set %(10094%)", err)
  end)

  it("ephemeral consumers get a generated name", function()
    local name = assert(js:add_consumer("JOBS"))
    assert.is_true(#name > 0)
    assert.are.equal(5, #js:fetch("JOBS", name, 10, 500))
    assert.is_true(js:delete_consumer("JOBS", name))
  end)

  it("errors: missing stream, consumer; bad options", function()
    local none, err, code = js:add_consumer("NOPE", { durable_name = "x" })
    assert.is_nil(none)
    assert.matches("^ember: ", err)
    assert.are.equal("not found", code)
    assert.are.equal("not found", select(3, js:fetch("JOBS", "nobody", 1, 0)))
    assert.are.equal("not found", select(3, js:consumer_info("JOBS", "nobody")))
    assert.are.equal("not found", select(3, js:delete_consumer("JOBS", "nobody")))
    -- the same durable again with the same configuration: found, not an error
    assert.are.equal("dup", js:add_consumer("JOBS", { durable_name = "dup" }))
    assert.are.equal("dup", js:add_consumer("JOBS", { durable_name = "dup" }))
    assert.has_error(function() js:add_consumer("JOBS", { durable_name = "x", ack_policy = "maybe" }) end)
    assert.has_error(function() js:add_consumer("JOBS", { durable = "x" }) end,
      'ember: unknown consumer option "durable"')
    assert.has_error(function() js:add_consumer("JOBS", { durable_name = "bad.name" }) end)
  end)

  -- ember.h: "EMBER_EEXISTS for a stream or consumer name in use with another
  -- configuration" (ember_js_consumer_create asks with "action":"create")
  it("a durable name in use with another configuration is 'exists'", function()
    js:add_consumer("JOBS", { durable_name = "dup2" })
    local none, _, code = js:add_consumer("JOBS", { durable_name = "dup2", filter_subject = "jobs.a" })
    assert.is_nil(none)
    assert.are.equal("exists", code)
  end)

  it("core messages cannot be acked; messages outlive their fetch", function()
    local sub = conn:subscribe("plain")
    conn:publish("plain", "x")
    local m = sub:next_msg(100)
    assert.has_error(function() m:ack() end)
    local meta, err = m:metadata()
    assert.is_nil(meta)
    assert.matches("^ember: ", err)
    js:add_consumer("JOBS", { durable_name = "k" })
    local kept = js:fetch("JOBS", "k", 2, 500)
    H.gc()
    assert.are.equal("job2", kept[2].data)
    assert.is_true(kept[2]:ack())
  end)

  it("a message's ack raises once its connection is closed", function()
    local c2 = srv:connect()
    local js2 = c2:jetstream()
    js2:add_consumer("JOBS", { durable_name = "c2" })
    local m = js2:fetch("JOBS", "c2", 1, 500)[1]
    c2:close()
    assert.are.equal("job1", m.data)
    assert.has_error(function() m:ack() end, "ember: connection closed")
    assert.has_error(function() js2:fetch("JOBS", "c2") end, "ember: connection closed")
  end)
end)

describe("JetStream disabled", function()
  it("raises with a hint", function()
    local srv = H.server()
    local js = srv:connect():jetstream()
    local ok, err = pcall(js.add_stream, js, { name = "S" })
    assert.is_false(ok)
    assert.matches("JetStream not enabled", err)
    assert.has_error(function() js:publish("x", "y") end)
    srv:close()
  end)
end)
