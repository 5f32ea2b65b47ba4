// Tabs sharing one socket, in Node: BroadcastChannel is there and Web Locks
// are not, so the tabs elect their leader over the channel with heartbeats
// (the browsers' path, Web Locks, runs in internal/e2e with Chromium).
import { test } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { createClient } from "../dist/index.js";
import { fakeServer, jwt, until } from "./support/fake-server.mjs";

test("one socket for two clients; a follower that misses a change gets it from the leader; the next one takes over", async (t) => {
  const s = await fakeServer({ positions: true });
  const now = Math.floor(Date.now() / 1000);
  const make = () => {
    const c = createClient({ url: s.url, WebSocket, share: true, backoff: { min: 20, max: 200 }, token: async () => jwt({ sub: "u1", iat: now, exp: now + 3600 }) });
    c.seen = [];
    c.on("notification", (n) => c.seen.push(n.id));
    return c;
  };
  const c1 = make();
  const c2 = make();
  t.after(async () => {
    c1.close();
    c2.close();
    await s.close();
  });
  await c1.connect();
  await c2.connect();
  await until(() => [c1.role, c2.role].sort().join() === "follower,leader" && c1.state === "live" && c2.state === "live", 8000, "a leader and a follower");
  assert.equal(s.sockets.size, 1);
  const leader = c1.role === "leader" ? c1 : c2;
  const follower = leader === c1 ? c2 : c1;

  // The follower loses one relayed change (a frozen page, a dropped message).
  const orig = follower.onShared.bind(follower);
  let drop = 1;
  follower.onShared = (m) => {
    if (m?.t === "change" && drop-- > 0) return;
    orig(m);
  };
  s.create("a");
  s.create("b");
  await until(() => follower.seen.length === 2 && leader.seen.length === 2, 3000, "both have both");
  assert.deepEqual(follower.seen, ["a", "b"]);
  assert.equal(follower.stats.gaps, 1);
  assert.equal(follower.cursor, "2");
  assert.deepEqual(follower.inbox.counts, leader.inbox.counts);

  // The leader goes: the follower takes over and resumes from its cursor.
  leader.close();
  s.create("c"); // while nobody holds the socket
  await until(() => follower.role === "leader" && follower.seen.length === 3, 8000, "the follower leads and catches up");
  assert.deepEqual(follower.seen, ["a", "b", "c"]);
  assert.match(s.urls.at(-1), /since=2(&|$)/);
});
