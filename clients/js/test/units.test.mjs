import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, closeDelay } from "../dist/backoff.js";
import { TokenSource, decodeClaims } from "../dist/token.js";
import { Sequencer } from "../dist/stream.js";
import { jwt } from "./support/fake-server.mjs";

test("full jitter: delays spread over [0, min·2^attempt), capped", () => {
  const o = { min: 500, max: 30000 };
  assert.equal(backoffDelay(0, o, () => 0), 0);
  assert.equal(backoffDelay(0, o, () => 0.999), 499);
  assert.equal(backoffDelay(3, o, () => 0.5), 2000);
  assert.equal(backoffDelay(40, o, () => 0.999), 29970);
  const seen = new Set();
  for (let i = 0; i < 200; i++) seen.add(Math.floor(backoffDelay(4, o) / 800));
  assert.ok(seen.size >= 8, "uniform over the window, not bunched");
  assert.ok(closeDelay(1008, 0, o, () => 0) >= 30000 / 8, "1008 waits longer");
});

test("token claims and when to refresh", () => {
  const now = 1_000_000_000_000;
  const tk = jwt({ sub: "ü1", iat: now / 1000, exp: now / 1000 + 3600 });
  assert.deepEqual(decodeClaims(tk), { sub: "ü1", iat: now / 1000, exp: now / 1000 + 3600 });
  assert.deepEqual(decodeClaims("not a jwt"), {});
  let clock = now;
  const src = new TokenSource(tk, () => clock);
  return src.get().then((held) => {
    assert.equal(src.refreshIn(held), 3600_000 - 60_000);
    // 30 s tokens: a quarter of the lifetime before exp.
    const short = { token: "", claims: { iat: 0, exp: 30 }, at: clock };
    assert.equal(src.refreshIn(short), 22_500);
    // The lifetime counts from when the token came, whatever the local clock says of exp.
    clock += 10_000;
    assert.equal(src.refreshIn(short), 12_500);
    assert.equal(src.refreshIn({ token: "", claims: {}, at: clock }), null);
  });
});

test("concurrent asks share one provider call", async () => {
  let calls = 0;
  const src = new TokenSource(async () => { calls++; await new Promise((r) => setTimeout(r, 10)); return jwt({ sub: "a" }); });
  await Promise.all([src.get(true), src.get(true), src.get()]);
  assert.equal(calls, 1);
});

test("the sequencer: apply, repeat, gap; gaps inside a catch-up are the server's order", () => {
  const s = new Sequencer();
  const f = (pos) => ({ topic: "observation/signal/notification/created", room: "r", pos, data: { id: "n" + pos } });
  s.at(5);
  assert.equal(s.judge(f(5)), "repeat");
  assert.equal(s.judge(f(6)), "apply");
  s.applied(f(6));
  assert.equal(s.judge(f(8)), "gap");
  s.catchingUp = true;
  assert.equal(s.judge(f(8)), "apply", "positions before the upgrade (0009) are not dense");
  assert.equal(s.since(), "6");
  const legacy = new Sequencer();
  const g = { topic: "observation/signal/notification/created", room: "r", data: { id: "x" } };
  assert.equal(legacy.judge(g), "apply");
  legacy.applied(g);
  assert.equal(legacy.judge(g), "repeat");
  assert.equal(legacy.since(), "x");
});

test("counts never go back by position: a change recorded during a load does not undo the load's newer counts", async () => {
  const { Inbox } = await import("../dist/inbox.js");
  let answer;
  const rest = {
    page: async () => ({ items: [{ id: "n1" }, { id: "n2" }] }),
    counts: () => new Promise((r) => { answer = r; }),
  };
  const seen = [];
  const inbox = new Inbox(rest, { error: () => {}, counts: (c) => seen.push(c) });
  inbox.positioned = true;
  const loading = inbox.load();
  // The stream's change at position 1 comes while the load waits; the
  // server's counts (position 2) were read after it.
  inbox.apply({ topic: "observation/signal/notification/created", pos: 1, counts: { unread: 1, unseen: 1, total: 1 }, data: { id: "n1" } });
  answer({ unread: 2, unseen: 2, total: 2, pos: 2 });
  await loading;
  assert.deepEqual(inbox.counts, { unread: 2, unseen: 2, total: 2, pos: 2 });
  // A later change moves them on.
  inbox.apply({ topic: "observation/signal/notification/created", pos: 3, counts: { unread: 3, unseen: 3, total: 3 }, data: { id: "n3" } });
  assert.deepEqual(inbox.counts, { unread: 3, unseen: 3, total: 3, pos: 3 });
});
