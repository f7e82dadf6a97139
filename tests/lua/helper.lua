-- Shared helpers of the Lua test suite (require "helper").
local ember = require "ember"
local H = {}

H.ember = ember

-- A server without TCP listener (or with one on a free port when tcp is true).
function H.server(opts)
  opts = opts or {}
  local o = { dont_listen = not opts.tcp }
  if opts.tcp then o.port = -1; o.host = "127.0.0.1" end
  for k, v in pairs(opts) do if k ~= "tcp" then o[k] = v end end
  return ember.server(o)
end

-- A fresh temporary directory (removed by H.rmdir).
function H.tmpdir()
  local d = os.tmpname() -- creates a file: make it a directory
  os.remove(d)
  assert(os.execute("mkdir -p '" .. d .. "'"))
  return d
end

function H.rmdir(d)
  if d and d:match("^/tmp/") then os.execute("rm -rf '" .. d .. "'") end
end

-- A server with JetStream (in-process only); its store goes in a temporary directory
-- that H.close_js removes. Returns srv, conn, js.
function H.js_server(opts)
  local o = { jetstream = true, store_dir = H.tmpdir() }
  for k, v in pairs(opts or {}) do o[k] = v end
  local srv = H.server(o)
  local conn = srv:connect()
  return srv, conn, conn:jetstream(), o.store_dir
end

function H.close_js(srv, dir)
  if srv then srv:close() end
  H.rmdir(dir)
end

-- Full collection, twice: finalizers run in the first, their objects go in the second.
function H.gc()
  collectgarbage("collect")
  collectgarbage("collect")
end

-- Run a Lua chunk in a child lua5.4 with this module path; returns ok, code, stdout, stderr.
function H.run_child(code)
  local dir = os.tmpname()
  os.remove(dir)
  local src, err = dir .. ".lua", dir .. ".err"
  local f = assert(io.open(src, "w"))
  f:write(code)
  f:close()
  local cmd = string.format("LUA_CPATH=%q %s %q 2>%q", package.cpath, H.lua(), src, err)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok, _, status = p:close()
  local e = assert(io.open(err, "r"))
  local stderr = e:read("a")
  e:close()
  os.remove(src)
  os.remove(err)
  return ok, status, out, stderr
end

-- The interpreter for child processes: $EMBER_LUA or lua5.4.
function H.lua()
  return os.getenv("EMBER_LUA") or "lua5.4"
end

-- Does a shell command exist?
function H.have(cmd)
  local ok = os.execute("command -v " .. cmd .. " >/dev/null 2>&1")
  return ok == true or ok == 0
end

return H
