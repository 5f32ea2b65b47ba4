// The client against a scripted server (test/support/fake-server.mjs): every
// path of docs/sync-stream.md and docs/protocol.md, including those a real
// server takes only by accident. The real server is in internal/e2e.
import { test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { createClient } from "../dist/index.js";
import { fakeServer, jwt, until } from "./support/fake-server.mjs";

const fast = { backoff: { min: 20, max: 200 } };

async function setup(t, { positions = true, token, ...opts } = {}) {
  const s = await fakeServer({ positions });
  const tokens = [];
  const client = createClient({
    url: s.url,
    WebSocket,
    token: token ?? (async () => {
      const now = Math.floor(Date.now() / 1000);
      const tk = jwt({ sub: "u1", iat: now, exp: now + 3600, n: tokens.length });
      tokens.push(tk);
      return tk;
    }),
    ...fast,
    ...opts,
  });
  const seen = { notifications: [], states: [], errors: [], counts: [], resets: [] };
  client.on("notification", (n) => seen.notifications.push(n.id));
  client.on("state", (x) => seen.states.push(x));
  client.on("error", (e) => seen.errors.push(e));
  client.on("counts", (c) => seen.counts.push(c));
  client.on("reset", (r) => seen.resets.push(r));
  t.after(async () => {
    client.close();
    await s.close();
  });
  return { s, client, seen, tokens };
}

function sameInbox(client, s) {
  const want = [...s.items.values()].filter((it) => !it.isArchived).sort((a, b) => b.pos - a.pos)
    .map((it) => `${it.id} r${+it.isRead} s${+it.isSeen}`);
  const got = client.inbox.items.map((it) => `${it.id} r${+it.isRead} s${+it.isSeen}`);
  return JSON.stringify(got) === JSON.stringify(want) && JSON.stringify(stripPos(client.inbox.counts)) === JSON.stringify(s.counts());
}
const stripPos = (c) => c && { unread: c.unread, unseen: c.unseen, total: c.total };

test("live after synced; the inbox and counts follow the stream; repeats are dropped by position", async (t) => {
  const { s, client, seen } = await setup(t);
  s.create("a");
  await client.connect();
  await until(() => client.state === "live" && client.inbox.getSnapshot().loaded, 3000, "live and loaded");
  assert.deepEqual(seen.states, ["connecting", "live"]);
  s.create("b");
  s.create("c");
  await until(() => seen.notifications.length === 2, 3000, "two notifications");
  s.send(s.frame(s.changes[2])); // c again: a repeat
  s.update({ ids: ["a"], isRead: true, isSeen: true });
  await until(() => sameInbox(client, s), 3000, "the inbox equal to the server's");
  assert.deepEqual(seen.notifications, ["b", "c"]);
  assert.equal(client.stats.repeats, 1);
  assert.equal(client.cursor, "4");
  assert.deepEqual(stripPos(seen.counts.at(-1)), { unread: 2, unseen: 2, total: 3 });
});

test("a gap in the live stream is repaired with join since the cursor", async (t) => {
  const { s, client, seen } = await setup(t);
  await client.connect();
  await until(() => client.state === "live");
  s.create("a");
  s.skipLive = 1;
  s.create("b"); // lost on the way
  s.create("c"); // pos 3 after 1: a gap
  await until(() => seen.notifications.length === 3, 3000, "the missing one");
  assert.deepEqual(seen.notifications, ["a", "b", "c"]);
  assert.deepEqual(s.actions.filter((a) => a.action === "join"), [{ action: "join", room: "signal/notification/u1", since: "1" }]);
  assert.equal(client.stats.gaps, 1);
  await until(() => sameInbox(client, s));
});

for (const code of [1001, 1012, 3008, 1006, 1000, 1011]) {
  test(`close ${code}: reconnect with since = the cursor, nothing lost or repeated`, async (t) => {
    const { s, client, seen } = await setup(t);
    await client.connect();
    await until(() => client.state === "live");
    s.create("a");
    await until(() => seen.notifications.length === 1);
    if (code === 1006) for (const ws of s.sockets) ws.terminate();
    else s.closeAll(code);
    s.create("b"); // while disconnected
    await until(() => seen.notifications.length === 2, 3000, "the one missed");
    assert.match(s.urls.at(-1), /since=1(&|$)/);
    assert.equal(client.stats.repeats, 0);
    await until(() => client.state === "live");
    assert.deepEqual(seen.states.slice(-3), ["offline", "connecting", "live"]);
  });
}

test("close 1008 backs off longer than the others", async (t) => {
  const { s, client } = await setup(t, { backoff: { min: 20, max: 2000 } });
  await client.connect();
  await until(() => client.state === "live");
  const at = Date.now();
  s.closeAll(1008);
  await until(() => s.urls.length === 2, 5000);
  assert.ok(Date.now() - at >= 250, `reconnected after ${Date.now() - at} ms; 1008 waits at least max/8`);
});

test("4001: a new token from the provider, then reconnect", async (t) => {
  const { s, client, tokens } = await setup(t);
  await client.connect();
  await until(() => client.state === "live");
  s.closeAll(4001, "token expired");
  await until(() => s.urls.length === 2, 3000);
  assert.equal(tokens.length, 2);
  assert.ok(s.urls[1].includes("token=" + tokens[1]), "the second socket uses the new token");
});

test("4001 with a fixed token: stop, and say why", async (t) => {
  const now = Math.floor(Date.now() / 1000);
  const { s, client, seen } = await setup(t, { token: jwt({ sub: "u1", exp: now + 3600 }) });
  await client.connect();
  await until(() => client.state === "live");
  s.closeAll(4001);
  await until(() => seen.errors.some((e) => e.code === "token" && e.closeCode === 4001));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(s.urls.length, 1, "no reconnect with a token that cannot be renewed");
  assert.equal(client.state, "offline");
});

test("the token is refreshed on the open socket before exp", async (t) => {
  const tokens = [];
  const { s, client } = await setup(t, {
    token: async () => {
      const now = Math.floor(Date.now() / 1000);
      const tk = jwt({ sub: "u1", iat: now, exp: now + 3 });
      tokens.push(tk);
      return tk;
    },
  });
  await client.connect();
  await until(() => s.actions.filter((a) => a.action === "refresh").length >= 2 && client.stats.refreshes >= 2, 6000, "two refreshes");
  assert.equal(s.urls.length, 1, "no reconnect");
  assert.equal(s.actions.find((a) => a.action === "refresh").token, tokens[1]);
  assert.equal(client.stats.refreshes >= 2, true);
});

test("an upgrade refused for the token asks for a new one", async (t) => {
  const { s, client, tokens } = await setup(t);
  s.refuse = "401 Unauthorized";
  const counts = s.counts;
  void counts;
  await client.connect();
  // The probe (GET /notifications/counts) accepts any bearer here, so the
  // refusal is taken for an outage: backoff, same token.
  await until(() => s.urls.length >= 3, 3000);
  assert.equal(tokens.length, 1);
  s.refuse = null;
  await until(() => client.state === "live", 3000);
});

test("reset: the inbox is loaded again and the stream goes on from its position", async (t) => {
  const { s, client, seen } = await setup(t);
  s.create("a");
  await client.connect();
  await until(() => client.inbox.getSnapshot().loaded);
  s.closeAll(1012);
  s.resetReason = "expired";
  s.create("b");
  s.update({ ids: ["a"], isDeleted: true });
  await until(() => seen.resets.length === 1, 3000);
  assert.deepEqual(seen.resets[0], { reason: "expired", pos: 3 });
  await until(() => sameInbox(client, s), 3000);
  s.create("c");
  await until(() => client.inbox.items.length === 2 && client.cursor === "4");
  assert.ok(sameInbox(client, s));
});

test("updated with all applies to the items before its position only", async (t) => {
  const { s, client } = await setup(t);
  for (const id of ["a", "b", "c"]) s.create(id); // positions 1, 2, 3
  await client.connect();
  await until(() => client.inbox.items.length === 3);
  // A read-all at position 3 saw a and b only (c came after it in a
  // snapshot that is newer than the change, as after a reload).
  client.inbox.apply({ topic: "observation/signal/notification/updated", room: "signal/notification/u1", pos: 3, data: { ids: ["b", "a"], all: true, isRead: true } });
  const states = Object.fromEntries(client.inbox.items.map((it) => [it.id, it.isRead]));
  assert.deepEqual(states, { a: true, b: true, c: false });
});

test("removed drops items; updated sets an edit's or a group's fields", async (t) => {
  const { s, client } = await setup(t);
  for (const id of ["a", "b", "c"]) s.create(id); // positions 1, 2, 3
  await client.connect();
  await until(() => client.inbox.items.length === 3);
  const room = "signal/notification/u1";
  client.inbox.apply({ topic: "observation/signal/notification/removed", room, pos: 4, data: { ids: ["a"], reason: "expired" } });
  client.inbox.apply({ topic: "observation/signal/notification/updated", room, pos: 5,
    data: { ids: ["b"], content: "Refunded", actionUrl: "", data: { refund: 1 }, count: 12, actors: [{ id: "x", name: "X", type: "user" }] } });
  assert.deepEqual(client.inbox.items.map((i) => i.id).sort(), ["b", "c"]);
  const b = client.inbox.items.find((i) => i.id === "b");
  assert.equal(b.content, "Refunded");
  assert.equal(b.actionUrl, null);
  assert.deepEqual(b.data, { refund: 1 });
  assert.equal(b.count, 12);
  assert.equal(b.actors[0].id, "x");
});

test("the inbox's own changes: one id, many, all; optimistic, then confirmed", async (t) => {
  const { s, client } = await setup(t);
  for (const id of ["a", "b", "c", "d"]) s.create(id);
  await client.connect();
  await until(() => client.inbox.items.length === 4);
  await client.inbox.markRead("a");
  await client.inbox.markSeen(["b", "c"]);
  await client.inbox.archive("d");
  assert.equal(client.inbox.items.length, 3, "archived at once");
  await until(() => sameInbox(client, s), 3000, "the states of three changes");
  await client.inbox.unarchive("d");
  await until(() => client.inbox.items.length === 4 && sameInbox(client, s), 3000, "d back");
  await client.inbox.markRead("all");
  await until(() => sameInbox(client, s) && client.inbox.counts.unread === 0, 3000, "all read");
  await client.inbox.delete(["a", "b"]);
  await until(() => sameInbox(client, s) && client.inbox.items.length === 2, 3000, "two deleted");
});

test("pages: loadMore follows the cursor", async (t) => {
  const { s, client } = await setup(t, { pageSize: 2 });
  for (const id of ["a", "b", "c", "d", "e"]) s.create(id);
  await client.connect();
  await until(() => client.inbox.getSnapshot().loaded);
  assert.deepEqual(client.inbox.items.map((i) => i.id), ["e", "d"]);
  await client.inbox.loadMore();
  await client.inbox.loadMore();
  assert.deepEqual(client.inbox.items.map((i) => i.id), ["e", "d", "c", "b", "a"]);
  assert.equal(client.inbox.hasMore, false);
});

test("a server without positions: since is the last id, repeats are dropped by id, counts come from REST", async (t) => {
  const { s, client, seen } = await setup(t, { positions: false });
  await client.connect();
  await until(() => client.state === "live" && client.inbox.getSnapshot().loaded);
  s.create("a");
  s.create("b");
  s.send(s.frame(s.changes[0])); // a again
  await until(() => seen.notifications.length === 2);
  s.closeAll(1012);
  s.create("c");
  await until(() => seen.notifications.length === 3);
  assert.match(s.urls.at(-1), /since=b(&|$)/);
  assert.equal(client.stats.repeats, 1);
  await until(() => sameInbox(client, s), 3000, "counts read from REST");
});

test("a server without positions that does not know since: the inbox is loaded again", async (t) => {
  const { s, client, seen } = await setup(t, { positions: false });
  await client.connect();
  await until(() => client.state === "live");
  s.create("a");
  await until(() => seen.notifications.length === 1);
  s.changes.length = 0; // the server forgot it
  s.closeAll(1012);
  await until(() => seen.resets.length === 1, 3000);
  assert.equal(seen.resets[0].reason, "unknown_since");
});

test("a ping that gets no answer closes the socket and reconnects", async (t) => {
  const { s, client } = await setup(t, { pingInterval: 100, pongTimeout: 100 });
  await client.connect();
  await until(() => client.state === "live");
  for (const ws of s.sockets) ws.removeAllListeners("message"); // a dead peer: nothing answers
  await until(() => s.urls.length === 2, 3000, "a reconnect after the missed pong");
});

test("close() stops for good", async (t) => {
  const { s, client } = await setup(t);
  await client.connect();
  await until(() => client.state === "live");
  client.close();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(s.sockets.size, 0);
  assert.equal(s.urls.length, 1);
  assert.equal(client.state, "offline");
});
