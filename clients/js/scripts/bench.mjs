// The client's figures for bench/README.md (`make bench-js`):
//   node scripts/bench.mjs            CPU of the client per 1,000 notifications, and the bundle sizes
//
// CPU: a scripted server (test/support/fake-server.mjs, sync-stream frames
// with pos and counts) runs in a child process and pushes N notifications as
// fast as the socket takes them; this process runs one client (inbox store
// on, as an app would) and measures its own CPU (user + system) from the
// first push to the last notification event.
import { fork } from "node:child_process";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { createClient } from "../dist/index.js";
import { jwt } from "../test/support/fake-server.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

if (process.argv[2] === "--server") {
  const { fakeServer } = await import("../test/support/fake-server.mjs");
  const s = await fakeServer({ positions: true });
  process.send({ url: s.url });
  process.on("message", (m) => {
    for (let i = 0; i < m.n; i++) s.create(`${m.round}-${i}`);
    process.send({ pushed: m.n });
  });
} else {
  const N = Number(process.env.BENCH_N ?? 10000);
  const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
  const child = fork(fileURLToPath(import.meta.url), ["--server"], { stdio: "inherit" });
  const { url } = await new Promise((r) => child.once("message", r));
  const now = Math.floor(Date.now() / 1000);
  const client = createClient({ url, WebSocket, token: jwt({ sub: "u1", iat: now, exp: now + 3600 }), pageSize: 100 });
  await client.connect();
  await new Promise((r) => { if (client.state === "live") r(); else client.on("state", (s) => s === "live" && r()); });
  const perK = [];
  for (let round = 0; round < ROUNDS; round++) {
    let seen = 0;
    const done = new Promise((r) => {
      const off = client.on("notification", () => { if (++seen === N) { off(); r(); } });
    });
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    child.send({ n: N, round });
    await done;
    const cpu = process.cpuUsage(cpu0);
    const ms = (cpu.user + cpu.system) / 1000;
    perK.push(ms / (N / 1000));
    console.error(`round ${round + 1}: ${N} notifications, client CPU ${ms.toFixed(0)} ms (${(ms / (N / 1000)).toFixed(2)} ms per 1,000), wall ${(performance.now() - t0).toFixed(0)} ms`);
  }
  client.close();
  child.kill();
  perK.sort((a, b) => a - b);
  const sizes = JSON.parse(execFileSync(process.execPath, [join(root, "scripts/bundle.mjs"), "sizes"]).toString());
  console.log(JSON.stringify({ node: process.version, notifications: N, rounds: ROUNDS, cpuMsPer1000: { median: +perK[Math.floor(perK.length / 2)].toFixed(2), min: +perK[0].toFixed(2), max: +perK.at(-1).toFixed(2) }, inboxItems: client.inbox.items.length, bundles: sizes }, null, 1));
}
