// Security features as an application sees them through the official JavaScript client
// (@nats-io/transport-node): users with passwords, tokens and nkeys; publish and subscribe
// permissions; accounts with exports and imports; operator mode with JWTs and .creds;
// TLS with a CA made here; configuration errors that name the right line.
//
// Unlike the other suites this one needs its own server configurations, so it does not use
// NATS_URL: it starts the binary named by EMBER_JS_SERVER (tests/js/run.sh exports it) on
// free loopback ports with config files written to a temp dir, and stops only the
// processes it started. Every wait is bounded; nothing asserts on timing.
//
// The same assertions hold for Debian's nats-server 2.9 and for ember-server, except where
// a comment says otherwise.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  connect,
  credsAuthenticator,
  errors,
  nkeyAuthenticator,
  nkeys,
} from "@nats-io/transport-node";
import { reader, td, te, within } from "./helpers.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SERVER = process.env.EMBER_JS_SERVER || "";
const SKIP = SERVER ? false : "EMBER_JS_SERVER is not set (tests/js/run.sh sets it)";
const T = { timeout: 30_000 };

let tmp = "";
const started = new Set(); // child processes started by this file

// ---------------------------------------------------------------------------------------
// server processes

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Resolves true once a plain TCP connection to the port gets an INFO line.
function infoOnce(port) {
  return new Promise((resolve) => {
    const c = net.connect(port, "127.0.0.1");
    const t = setTimeout(() => { c.destroy(); resolve(false); }, 500);
    c.on("data", (d) => {
      clearTimeout(t);
      c.destroy();
      resolve(String(d).startsWith("INFO "));
    });
    c.on("error", () => { clearTimeout(t); resolve(false); });
  });
}

function runServer(args) {
  const child = spawn(SERVER, args, { stdio: ["ignore", "pipe", "pipe"] });
  started.add(child);
  child.log = "";
  const keep = (d) => {
    if (child.log.length < 64 * 1024) child.log += d;
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  child.exited = new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      started.delete(child);
      resolve({ code, signal });
    });
  });
  return child;
}

// Writes conf to <tmp>/<name>.conf and starts the server on a free loopback port; resolves
// once it sends INFO (bounded by 10 s).
async function startServer(name, conf) {
  const file = path.join(tmp, `${name}.conf`);
  writeFileSync(file, conf);
  const port = await freePort();
  const child = runServer(["-c", file, "-a", "127.0.0.1", "-p", String(port)]);
  let dead = false;
  child.exited.then(() => (dead = true));
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    if (dead) throw new Error(`${name}: server exited during startup:\n${child.log}`);
    if (await infoOnce(port)) return { child, port, url: `127.0.0.1:${port}`, file };
    await new Promise((r) => setTimeout(r, 100));
  }
  await stopServer({ child });
  throw new Error(`${name}: server did not accept connections on ${port}:\n${child.log}`);
}

async function stopServer(s) {
  const child = s?.child;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const r = await within(5000, child.exited, "server stop").catch(() => null);
  if (!r) {
    child.kill("SIGKILL");
    await within(5000, child.exited, "server kill").catch(() => {});
  }
}

before(() => {
  if (SKIP) return;
  tmp = mkdtempSync(path.join(os.tmpdir(), "ember-js-sec-"));
});

// If the run is cut short (run.sh's timeout, Ctrl-C), stop the servers started here.
const killStarted = () => {
  for (const child of started) child.kill("SIGKILL");
};
process.on("exit", killStarted);
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    killStarted();
    process.exit(130);
  });
}

after(async () => {
  for (const child of [...started]) await stopServer({ child });
  if (tmp && process.env.EMBER_JS_KEEP !== "1") rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------
// client helpers

const opts = (srv, more = {}) => ({
  servers: srv.url,
  timeout: 5000,
  reconnect: false,
  ...more,
});

// Connects, proves the connection works with a round trip, returns it.
async function accepted(srv, more, label) {
  const nc = await within(10_000, connect(opts(srv, more)), `${label}: connect`);
  await within(5000, nc.flush(), `${label}: flush`);
  return nc;
}

// Expects connect to fail; returns the error.
async function refused(srv, more, label) {
  let nc, err;
  try {
    nc = await within(10_000, connect(opts(srv, more)), `${label}: connect`);
  } catch (e) {
    err = e;
  }
  if (nc) {
    await nc.close().catch(() => {});
    assert.fail(`${label}: the connection was accepted`);
  }
  assert.ok(err, `${label}: no error`);
  return err;
}

// The client's error for a refused CONNECT: the server's -ERR 'Authorization Violation'.
async function authRefused(srv, more, label) {
  const err = await refused(srv, more, label);
  assert.ok(
    err instanceof errors.AuthorizationError,
    `${label}: expected AuthorizationError, got ${err?.name}: ${err?.message}`,
  );
  assert.equal(err.message, "Authorization Violation", label);
  return err;
}

// Next {type: "error"} status event from a reader over nc.status().
async function nextStatusError(st, label) {
  for (let i = 0; i < 100; i++) {
    const s = await st.one(5000, `${label}: status`);
    if (s.type === "error") return s.error;
  }
  throw new Error(`${label}: no error status`);
}

function isNoResponders(err) {
  return err instanceof errors.NoRespondersError ||
    (err instanceof errors.RequestError && err.isNoResponders());
}

async function close(...ncs) {
  for (const nc of ncs) {
    if (nc) await within(5000, nc.close(), "close").catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------
// users, passwords, tokens, nkeys, permissions

describe("users, passwords and nkeys", { skip: SKIP }, () => {
  let srv;
  const nk = nkeys.createUser();
  const stranger = nkeys.createUser();

  before(async () => {
    srv = await startServer("users", `
authorization {
  users = [
    { user: alice, password: s3cret,
      permissions { publish: { allow: ["pub.>", "_INBOX.>"], deny: "pub.secret" },
                    subscribe: { allow: ["sub.>", "_INBOX.>"], deny: "sub.secret" } } }
    { user: bob, password: b0b }
    { nkey: ${nk.getPublicKey()} }
  ]
}
`);
  });
  after(() => stopServer(srv));

  test("the right password is accepted", T, async () => {
    const nc = await accepted(srv, { user: "alice", pass: "s3cret" }, "alice");
    assert.equal(nc.info.auth_required, true);
    await close(nc);
  });

  test("a wrong password, an unknown user and no credentials are refused", T, async () => {
    await authRefused(srv, { user: "alice", pass: "nope" }, "wrong password");
    await authRefused(srv, { user: "mallory", pass: "s3cret" }, "unknown user");
    await authRefused(srv, {}, "no credentials");
  });

  test("an nkey user with the right seed is accepted, another seed is refused", T, async () => {
    const nc = await accepted(srv, { authenticator: nkeyAuthenticator(nk.getSeed()) }, "nkey");
    assert.ok(nc.info.nonce, "INFO carries a nonce");
    await close(nc);
    await authRefused(srv, { authenticator: nkeyAuthenticator(stranger.getSeed()) }, "other seed");
  });

  test("a publish to a denied subject is reported as a Permissions Violation", T, async () => {
    const nc = await accepted(srv, { user: "alice", pass: "s3cret" }, "alice");
    const st = reader(nc.status(), "status");
    nc.publish("other", "x");
    let err = await nextStatusError(st, "publish other");
    assert.ok(err instanceof errors.PermissionViolationError, `${err?.name}: ${err?.message}`);
    assert.equal(err.message, 'Permissions Violation for Publish to "other"');
    assert.equal(err.operation, "publish");
    assert.equal(err.subject, "other");
    // an explicit deny inside an allowed wildcard
    nc.publish("pub.secret", "x");
    err = await nextStatusError(st, "publish pub.secret");
    assert.equal(err.message, 'Permissions Violation for Publish to "pub.secret"');
    // the connection stays usable and allowed subjects work
    nc.publish("pub.ok", "x");
    await within(5000, nc.flush(), "flush after violations");
    assert.equal(nc.isClosed(), false);
    await close(nc);
  });

  test("a denied subscription is closed with a Permissions Violation", T, async () => {
    const nc = await accepted(srv, { user: "alice", pass: "s3cret" }, "alice");
    const st = reader(nc.status(), "status");
    const sub = nc.subscribe("other");
    const err = await nextStatusError(st, "subscribe other");
    assert.ok(err instanceof errors.PermissionViolationError, `${err?.name}: ${err?.message}`);
    assert.equal(err.message, 'Permissions Violation for Subscription to "other"');
    assert.equal(err.operation, "subscription");
    assert.equal(err.subject, "other");
    // the client closes the subscription with that error
    const why = await within(5000, sub.closed, "sub.closed");
    assert.ok(why instanceof errors.PermissionViolationError, `sub.closed: ${why}`);
    assert.equal(why.subject, "other");
    // a queue subscription is named with its group
    nc.subscribe("other", { queue: "q" });
    const qerr = await nextStatusError(st, "queue subscribe other");
    assert.equal(qerr.message, 'Permissions Violation for Subscription to "other" using queue "q"');
    assert.equal(qerr.queue, "q");
    await within(5000, nc.flush(), "flush after violations");
    await close(nc);
  });

  test("a wildcard subscription never receives a denied subject", T, async () => {
    const alice = await accepted(srv, { user: "alice", pass: "s3cret" }, "alice");
    const bob = await accepted(srv, { user: "bob", pass: "b0b" }, "bob");
    const sub = reader(alice.subscribe("sub.*"), "sub.*");
    await alice.flush();
    // one publisher: the server keeps its order, so "shown" arriving first means
    // "hidden" was not delivered
    bob.publish("sub.secret", "hidden");
    bob.publish("sub.open", "shown");
    await bob.flush();
    const m = await sub.one(5000, "sub.*");
    assert.equal(m.subject, "sub.open");
    assert.equal(m.string(), "shown");
    await close(alice, bob);
  });
});

describe("token", { skip: SKIP }, () => {
  let srv;
  const token = `t0k3n-${randomBytes(8).toString("hex")}`;
  before(async () => {
    srv = await startServer("token", `authorization { token: "${token}" }\n`);
  });
  after(() => stopServer(srv));

  test("the right token is accepted, a wrong or missing one refused", T, async () => {
    const nc = await accepted(srv, { token }, "token");
    await close(nc);
    await authRefused(srv, { token: "wrong" }, "wrong token");
    await authRefused(srv, {}, "no token");
  });
});

// ---------------------------------------------------------------------------------------
// accounts

describe("accounts", { skip: SKIP }, () => {
  let srv, a, b;
  before(async () => {
    srv = await startServer("accounts", `
accounts {
  A: {
    users: [ {user: a, password: a} ]
    exports: [
      {stream: "news.>"}
      {service: "svc.echo"}
    ]
  }
  B: {
    users: [ {user: b, password: b} ]
    imports: [
      {stream: {account: A, subject: "news.>"}, prefix: "a"}
      {service: {account: A, subject: "svc.echo"}, to: "echo"}
    ]
  }
}
`);
    a = await accepted(srv, { user: "a", pass: "a" }, "a");
    b = await accepted(srv, { user: "b", pass: "b" }, "b");
  });
  after(async () => {
    await close(a, b);
    await stopServer(srv);
  });

  test("the same subject in two accounts is isolated", T, async () => {
    const sa = reader(a.subscribe("x.y"), "a x.y");
    const sb = reader(b.subscribe("x.y"), "b x.y");
    await a.flush();
    await b.flush();
    b.publish("x.y", "from-b");
    await b.flush(); // processed (and delivered to any matching subscriber) before the PONG
    a.publish("x.y", "from-a");
    const ma = await sa.one(5000, "a x.y");
    assert.equal(ma.string(), "from-a", "a got B's message");
    const mb = await sb.one(5000, "b x.y");
    assert.equal(mb.string(), "from-b");
    b.publish("x.y", "from-b-2");
    const mb2 = await sb.one(5000, "b x.y");
    assert.equal(mb2.string(), "from-b-2", "b got A's message");
  });

  test("a request across accounts without an import has no responders", T, async () => {
    const s = a.subscribe("only.in.a", { callback: (_e, m) => m.respond("nope") });
    await a.flush();
    let err;
    try {
      await b.request("only.in.a", "?", { timeout: 3000 });
    } catch (e) {
      err = e;
    }
    assert.ok(err && isNoResponders(err), `expected no responders, got ${err?.name}: ${err?.message}`);
    s.unsubscribe();
  });

  test("a stream import arrives under its prefix", T, async () => {
    const sb = reader(b.subscribe("a.news.>"), "b a.news.>");
    const plain = reader(b.subscribe("news.>"), "b news.>");
    await b.flush();
    a.publish("news.today", "headline");
    const m = await sb.one(5000, "b a.news.>");
    assert.equal(m.subject, "a.news.today");
    assert.equal(m.string(), "headline");
    // only under the prefix: B's own news.> sees only B's own messages
    b.publish("news.local", "mine");
    const p = await plain.one(5000, "b news.>");
    assert.equal(p.subject, "news.local");
    assert.equal(p.string(), "mine");
  });

  test("a service import answers a request", T, async () => {
    const s = a.subscribe("svc.echo", {
      callback: (_e, m) => m.respond(`echo:${m.string()}`),
    });
    await a.flush();
    const r = await within(6000, b.request("echo", "hi", { timeout: 5000 }), "request echo");
    assert.equal(r.string(), "echo:hi");
    // the exporter's own subject is not visible in B
    let err;
    try {
      await b.request("svc.echo", "hi", { timeout: 3000 });
    } catch (e) {
      err = e;
    }
    assert.ok(err && isNoResponders(err), `svc.echo in B: ${err?.name}: ${err?.message}`);
    s.unsubscribe();
  });
});

// ---------------------------------------------------------------------------------------
// operator mode: JWTs minted here, as tests/interop/jwtmint.h and test_jwt.c do

const b64url = (b) => Buffer.from(b).toString("base64url");

// header.payload.signature, signed by the issuer's nkey; a random jti is added last
function mint(claims, signer) {
  claims.jti = `JTI${randomBytes(8).toString("hex")}`;
  const h = b64url(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" }));
  const p = b64url(JSON.stringify(claims));
  const sig = signer.sign(te.encode(`${h}.${p}`));
  return `${h}.${p}.${b64url(sig)}`;
}

function claims(iss, sub, name, type) {
  return {
    iat: Math.floor(Date.now() / 1000) - 5,
    iss,
    name,
    sub,
    nats: { type, version: 2 },
  };
}

function limits(nats, js) {
  const l = {};
  for (const k of ["subs", "data", "payload", "imports", "exports", "conn", "leaf", "streams", "consumer"]) {
    l[k] = -1;
  }
  l.wildcards = true;
  l.mem_storage = js ? -1 : 0;
  l.disk_storage = js ? -1 : 0;
  nats.limits = l;
}

// A user JWT of account accPub signed by signer (the account or a signing key).
function userJwt(u, accPub, signer, pubAllow = null, exp = 0) {
  const c = claims(signer.getPublicKey(), u.getPublicKey(), "user", "user");
  if (exp) c.exp = exp;
  const n = c.nats;
  n.pub = {};
  n.sub = {};
  if (pubAllow) n.pub.allow = [pubAllow, "$JS.API.>"];
  n.subs = -1;
  n.data = -1;
  n.payload = -1;
  if (signer.getPublicKey() !== accPub) n.issuer_account = accPub;
  return mint(c, signer);
}

function credsText(jwt, seed) {
  return `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n` +
    "************************* IMPORTANT *************************\n" +
    "NKEY Seed printed below can be used to sign and prove identity.\n\n" +
    `-----BEGIN USER NKEY SEED-----\n${td.decode(seed)}\n------END USER NKEY SEED------\n`;
}

const creds = (jwt, seed) => ({ authenticator: credsAuthenticator(te.encode(credsText(jwt, seed))) });

describe("operator mode with JWTs", { skip: SKIP }, () => {
  let srv;
  const op = nkeys.createOperator();
  const a1 = nkeys.createAccount();
  const a2 = nkeys.createAccount();
  const sk = nkeys.createAccount(); // a signing key of A1
  const sys = nkeys.createAccount();
  const stranger = nkeys.createAccount(); // an account the server does not know
  const [u1, u2, ur, ue, us, other] = Array.from({ length: 6 }, () => nkeys.createUser());

  before(async () => {
    const opJwt = mint(claims(op.getPublicKey(), op.getPublicKey(), "OP", "operator"), op);
    const c1 = claims(op.getPublicKey(), a1.getPublicKey(), "A1", "account");
    limits(c1.nats, true);
    c1.nats.signing_keys = [sk.getPublicKey()];
    c1.nats.exports = [{ name: "ping", subject: "ping.>", type: "service" }];
    const a1Jwt = mint(c1, op);
    const c2 = claims(op.getPublicKey(), a2.getPublicKey(), "A2", "account");
    limits(c2.nats, false);
    c2.nats.imports = [{ name: "ping", subject: "ping.>", account: a1.getPublicKey(), type: "service" }];
    const a2Jwt = mint(c2, op);
    // nats-server 2.9 wants a system account in operator mode; Ember accepts and ignores it
    const cs = claims(op.getPublicKey(), sys.getPublicKey(), "SYS", "account");
    limits(cs.nats, false);
    const sysJwt = mint(cs, op);
    const opFile = path.join(tmp, "op.jwt");
    writeFileSync(opFile, `${opJwt}\n`);
    srv = await startServer("operator", `
operator: "${opFile}"
resolver: MEMORY
system_account: ${sys.getPublicKey()}
resolver_preload: {
  ${a1.getPublicKey()}: "${a1Jwt}"
  ${a2.getPublicKey()}: "${a2Jwt}"
  ${sys.getPublicKey()}: "${sysJwt}"
}
`);
  });
  after(() => stopServer(srv));

  test("valid .creds are accepted (signed by the account or its signing key)", T, async () => {
    const n1 = await accepted(srv, creds(userJwt(u1, a1.getPublicKey(), a1), u1.getSeed()), "u1");
    const ns = await accepted(srv, creds(userJwt(us, a1.getPublicKey(), sk), us.getSeed()), "signing key user");
    const n2 = await accepted(srv, creds(userJwt(u2, a2.getPublicKey(), a2), u2.getSeed()), "u2");
    // the same account sees each other's messages, the other account does not
    const s1 = reader(n1.subscribe("t.>"), "u1 t.>");
    const s2 = reader(n2.subscribe("t.>"), "u2 t.>");
    await n1.flush();
    await n2.flush();
    ns.publish("t.1", "hello");
    await ns.flush();
    const m = await s1.one(5000, "u1 t.>");
    assert.equal(m.string(), "hello");
    n2.publish("t.2", "marker");
    assert.equal((await s2.one(5000, "u2 t.>")).string(), "marker", "A2 saw A1's message");
    // a service import from A2 into A1 (request/reply)
    n1.subscribe("ping.>", { callback: (_e, msg) => msg.respond("pong") });
    await n1.flush();
    const r = await within(6000, n2.request("ping.x", "?", { timeout: 5000 }), "ping.x");
    assert.equal(r.string(), "pong");
    await close(n1, ns, n2);
  });

  test("JWT permissions are applied", T, async () => {
    const nc = await accepted(srv, creds(userJwt(ur, a1.getPublicKey(), a1, "ok.>"), ur.getSeed()), "ur");
    const st = reader(nc.status(), "status");
    nc.publish("t.2", "nope");
    const err = await nextStatusError(st, "publish t.2");
    assert.ok(err instanceof errors.PermissionViolationError, `${err?.name}: ${err?.message}`);
    assert.equal(err.message, 'Permissions Violation for Publish to "t.2"');
    nc.publish("ok.1", "yes");
    await within(5000, nc.flush(), "flush");
    await close(nc);
  });

  test("an expired user JWT is refused", T, async () => {
    const now = Math.floor(Date.now() / 1000);
    await authRefused(srv, creds(userJwt(ue, a1.getPublicKey(), a1, null, now - 10), ue.getSeed()), "expired");
  });

  test("a user JWT signed by an unknown account is refused", T, async () => {
    await authRefused(
      srv,
      creds(userJwt(other, stranger.getPublicKey(), stranger), other.getSeed()),
      "unknown account",
    );
  });

  test("a forged JWT (another key's signature) is refused", T, async () => {
    const good = userJwt(u1, a1.getPublicKey(), a1);
    const forged = userJwt(u1, a1.getPublicKey(), stranger);
    const mixed = good.slice(0, good.lastIndexOf(".")) + forged.slice(forged.lastIndexOf("."));
    await authRefused(srv, creds(mixed, u1.getSeed()), "forged");
  });

  test("a valid JWT with the wrong seed is refused", T, async () => {
    await authRefused(srv, creds(userJwt(u1, a1.getPublicKey(), a1), other.getSeed()), "wrong seed");
  });

  test("no credentials are refused", T, async () => {
    await authRefused(srv, {}, "no credentials");
  });
});

// ---------------------------------------------------------------------------------------
// TLS with a CA made here (tests/tls/gen-certs.sh: the openssl CLI)

describe("TLS", { skip: SKIP }, () => {
  let srv, pki;
  before(async () => {
    pki = path.join(tmp, "pki");
    execFileSync("bash", [path.join(HERE, "..", "tls", "gen-certs.sh"), pki], {
      stdio: "ignore",
      timeout: 30_000,
    });
    srv = await startServer("tls", `
tls {
  cert_file: "${pki}/server.pem"
  key_file: "${pki}/server-key.pem"
}
`);
  });
  after(() => stopServer(srv));

  test("a client trusting the CA connects and exchanges messages", T, async () => {
    const nc = await accepted(srv, { tls: { caFile: `${pki}/ca.pem` } }, "tls");
    assert.equal(nc.info.tls_required, true);
    const sub = reader(nc.subscribe("tls.echo"), "tls.echo");
    nc.publish("tls.echo", "over tls");
    assert.equal((await sub.one(5000, "tls.echo")).string(), "over tls");
    await close(nc);
  });

  test("a client without the CA, or trusting another CA, refuses the server", T, async () => {
    for (const [label, more] of [
      ["no CA", {}],
      ["other CA", { tls: { caFile: `${pki}/other-ca.pem` } }],
    ]) {
      const err = await refused(srv, more, label);
      const text = `${err?.message} ${err?.cause?.message ?? ""} ${err?.cause?.code ?? ""}`;
      assert.match(text, /certificate|CERT/i, `${label}: ${text}`);
    }
  });
});

// ---------------------------------------------------------------------------------------
// configuration errors: the server refuses to start and names the file and line

// Starts the server on conf and expects it to exit non-zero within 10 s; returns its output.
async function refusesConfig(name, conf) {
  const file = path.join(tmp, `${name}.conf`);
  writeFileSync(file, conf);
  const port = await freePort();
  const child = runServer(["-c", file, "-a", "127.0.0.1", "-p", String(port)]);
  let r = null;
  child.exited.then((x) => (r = x));
  const end = Date.now() + 10_000;
  let serving = false;
  while (!r && !serving && Date.now() < end) {
    serving = await infoOnce(port); // a running server answers at once
    if (!serving) await new Promise((res) => setTimeout(res, 100));
  }
  if (!r) {
    await stopServer({ child });
    assert.fail(`${name}: the server ${serving ? "started" : "neither exited nor served"}` +
      ` despite the error; output:\n${child.log}`);
  }
  assert.notEqual(r.code, 0, `${name}: exit status`);
  return { out: child.log, file };
}

describe("configuration errors", { skip: SKIP }, () => {
  test("a syntax error names its line", T, async () => {
    const { out } = await refusesConfig("syntax", `port: 4222
authorization {
  users = [
    { user: a, password: a }
    { user: b password: }
  ]
}
`);
    // nats-server 2.9: "Parse error on line 5: ..."; Ember: "<file>:5:15: ..."
    assert.match(out, /(line 5\b|\.conf:5:\d+)/, out);
  });

  test("a token and a users array together", T, async () => {
    const { out, file } = await refusesConfig("token-users", `listen: 127.0.0.1:4222
authorization {
  token: abc
  users = [ { user: a, password: a } ]
}
`);
    assert.ok(out.includes(`${file}:2:1: Can not have a token and a users array`), out);
  });

  test("a duplicate user names its line", T, async () => {
    const { out, file } = await refusesConfig("dup-user", `accounts {
  A: { users: [ {user: x, password: x} ] }
  B: { users: [ {user: x, password: y} ] }
}
`);
    // nats-server walks its accounts map in Go's random order, so it names either
    // entry; Ember names the second one, the duplicate
    assert.ok(out.includes(`${file}:3:`) || (!path.basename(SERVER).startsWith("ember") && out.includes(`${file}:2:`)), out);
    assert.match(out, /Duplicate user "x" detected/);
  });

  test("an unknown field in a user entry is an error, not ignored", T, async () => {
    // a misspelt "permissions" must not leave the user with no permissions at all
    const { out, file } = await refusesConfig("user-typo", `listen: 127.0.0.1:4222
authorization {
  users = [
    { user: a, password: a, permisions: { publish: "only.this" } }
  ]
}
`);
    assert.ok(out.includes(`${file}:4:`), out);
    assert.match(out, /unknown field "permisions"/);
  });

  test("a missing TLS certificate names the tls block", T, async () => {
    const { out, file } = await refusesConfig("tls-missing", `listen: 127.0.0.1:4222
tls {
  cert_file: "${tmp}/no-such-cert.pem"
  key_file: "${tmp}/no-such-key.pem"
}
`);
    assert.ok(out.includes(`${file}:2:`), out);
    assert.match(out, /error parsing X509 certificate\/key pair/);
  });
});
