-- LuaRocks package of Ember's Lua 5.4 binding (require "ember").
--
--   cd lua && luarocks --lua-version 5.4 make --local     (builds ../core too)
--
-- From the repository root, `luarocks --lua-version 5.4 make lua/ember-scm-1.rockspec`
-- builds through the top-level CMakeLists.txt instead (which includes lua/).
-- Needs CMake, a C compiler, pkg-config, libuv, libcjson and OpenSSL (libcrypto) development
-- files (Debian: cmake pkg-config libuv1-dev libcjson-dev libssl-dev libcrypt-dev zlib1g-dev liblua5.4-dev).
rockspec_format = "3.0"
package = "ember"
version = "scm-1"
source = {
   url = "git+https://example.invalid/ember.git", -- placeholder: `luarocks make` builds the local checkout
}
description = {
   summary = "Embeddable NATS-compatible message broker: in-process server and connections",
   detailed = [[
Ember is an embeddable, NATS-compatible message broker written in C. This module starts
a broker inside the Lua process and talks to it through in-process connections:
publish, subscribe (callbacks run inside conn:poll() on the Lua thread), request/reply,
headers, JetStream streams with pull consumers, and key-value buckets (watches delivered
by conn:poll()). NATS clients in other processes reach the same broker over TCP.
]],
   license = "Apache-2.0",
   labels = { "nats", "messaging", "pubsub", "broker" },
}
dependencies = {
   "lua >= 5.4, < 5.5",
}
external_dependencies = {
   LIBUV = { header = "uv.h" },
   CJSON = { header = "cjson/cJSON.h" },
   OPENSSL = { header = "openssl/evp.h" },
}
build = {
   type = "cmake",
   variables = {
      CMAKE_BUILD_TYPE = "Release",
      EMBER_BUILD_LUA = "ON",
      -- only relevant when building from the repository root
      EMBER_BUILD_TESTS = "OFF",
      EMBER_BUILD_BENCH = "OFF",
      EMBER_BUILD_EXAMPLES = "OFF",
      EMBER_BUILD_FUZZ = "OFF",
   },
   -- The module lands in build.luarocks/lua/ either way; LuaRocks copies it into the
   -- tree rather than running `cmake --install` (which would also install libember).
   install_pass = false,
   install = {
      lib = { ember = "build.luarocks/lua/ember.so" },
   },
   copy_directories = {},
}
