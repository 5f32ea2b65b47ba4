// The test agent of internal/e2e/jsclient_test.go: it runs clients of the
// package in Node and in Chromium tabs (puppeteer-core, Debian's
// /usr/bin/chromium), takes commands as JSON lines on stdin and reports
// every event as a JSON line on stdout. The Go test owns the servers.
//
//   node agent.mjs <base URL of the test's app server>
//
// Commands: {"cmd":"client","name":…,"sub":…,"ttl":…} (Node),
// {"cmd":"tab","name":…,"sub":…,"ttl":…,"share":bool} (Chromium),
// {"cmd":"snapshot","name":…}, {"cmd":"eval","name":…,"js":…} (a tab),
// {"cmd":"call","name":…,"method":"markRead","args":[…]},
// {"cmd":"freeze"|"resume"|"hide"|"show"|"closeTab","name":…}, {"cmd":"quit"}.
import readline from "node:readline";
import WebSocket from "ws";
import { createClient } from "../../dist/index.js";

const base = process.argv[2];
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const clients = new Map(); // Node clients
const tabs = new Map(); // puppeteer pages
let browser = null;

function tokenURL(sub, ttl) {
  return `${base}/signal-token?sub=${encodeURIComponent(sub)}&ttl=${encodeURIComponent(ttl ?? "1h")}`;
}

function snapshotOf(c) {
  const s = c.inbox.getSnapshot();
  return { state: c.state, role: c.role, cursor: c.cursor, counts: s.counts, loaded: s.loaded, items: s.items.map((i) => ({ id: i.id, isRead: i.isRead, isSeen: i.isSeen })), stats: c.stats };
}

// wire reports a client's events; the same function runs in the tabs.
const wireSource = `(name, c, report) => {
  c.on("notification", (n) => report({ ev: "notification", name, id: n.id, pos: n.pos ?? null }));
  c.on("state", (s) => report({ ev: "state", name, state: s }));
  c.on("role", (r) => report({ ev: "role", name, role: r }));
  c.on("reset", (r) => report({ ev: "reset", name, reason: r.reason }));
  c.on("counts", (x) => report({ ev: "counts", name, counts: x }));
  c.on("error", (e) => report({ ev: "error", name, code: e.code, closeCode: e.closeCode ?? null, message: String(e.message) }));
}`;
const wire = eval(wireSource);

async function launch() {
  if (browser) return browser;
  const puppeteer = (await import("puppeteer-core")).default;
  browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  });
  return browser;
}

async function openTab(m) {
  const b = await launch();
  const page = await b.newPage();
  page.on("console", (msg) => { if (msg.type() === "error") out({ ev: "console", name: m.name, text: msg.text() }); });
  page.on("pageerror", (err) => out({ ev: "console", name: m.name, text: String(err) }));
  await page.exposeFunction("__report", (o) => out(o));
  await page.goto(`${base}/app/tab.html`, { waitUntil: "load" });
  await page.evaluate(async (name, sub, ttl, share, wireSource) => {
    const { createClient } = await import("/app/dist/index.js");
    const c = createClient({
      url: location.origin,
      token: () => fetch(`/signal-token?sub=${encodeURIComponent(sub)}&ttl=${encodeURIComponent(ttl)}`).then((r) => r.text()),
      share,
    });
    window.client = c;
    (0, eval)(wireSource)(name, c, (o) => window.__report(o));
    await c.connect();
  }, m.name, m.sub ?? "u1", m.ttl ?? "1h", m.share ?? true, wireSource);
  const cdp = await page.createCDPSession();
  tabs.set(m.name, { page, cdp });
}

const handlers = {
  async open(m) {
    // A page of the app server as it is (the README's browser example).
    const b = await launch();
    const page = await b.newPage();
    page.on("console", (msg) => { if (msg.type() === "error") out({ ev: "console", name: m.name, text: msg.text() }); });
    page.on("pageerror", (err) => out({ ev: "console", name: m.name, text: String(err) }));
    await page.goto(base + m.path, { waitUntil: "load" });
    tabs.set(m.name, { page, cdp: await page.createCDPSession() });
  },
  async client(m) {
    const c = createClient({
      url: base,
      WebSocket,
      token: async () => (await fetch(tokenURL(m.sub ?? "u1", m.ttl))).text(),
      backoff: m.backoff,
    });
    clients.set(m.name, c);
    wire(m.name, c, out);
    await c.connect();
  },
  tab: openTab,
  async snapshot(m) {
    if (clients.has(m.name)) return snapshotOf(clients.get(m.name));
    const t = tabs.get(m.name);
    return t.page.evaluate(`(${snapshotOf.toString()})(window.client)`);
  },
  async call(m) {
    if (clients.has(m.name)) return clients.get(m.name).inbox[m.method](...(m.args ?? []));
    return tabs.get(m.name).page.evaluate((method, args) => window.client.inbox[method](...args), m.method, m.args ?? []);
  },
  async eval(m) {
    return tabs.get(m.name).page.evaluate(m.js);
  },
  async react(m) {
    // Bundle test/e2e/react-app.jsx (react, react-dom and dist/react.js) and run it in the tab.
    const { build } = await import("esbuild");
    const r = await build({
      entryPoints: [new URL("./react-app.jsx", import.meta.url).pathname],
      bundle: true, write: false, format: "iife", jsx: "automatic", logLevel: "error",
      define: { "process.env.NODE_ENV": '"production"' },
    });
    await tabs.get(m.name).page.addScriptTag({ content: r.outputFiles[0].text });
  },
  async freeze(m) {
    const t = tabs.get(m.name);
    await t.cdp.send("Page.setWebLifecycleState", { state: "frozen" });
  },
  async resume(m) {
    const t = tabs.get(m.name);
    await t.cdp.send("Page.setWebLifecycleState", { state: "active" });
  },
  async hide(m) {
    // A tab in the background: another one in front of it.
    const t = tabs.get(m.name);
    const other = await browser.newPage();
    t.cover = other;
    await other.bringToFront();
    return t.page.evaluate(() => document.visibilityState);
  },
  async show(m) {
    const t = tabs.get(m.name);
    await t.page.bringToFront();
    await t.cover?.close();
    return t.page.evaluate(() => document.visibilityState);
  },
  async closeTab(m) {
    const t = tabs.get(m.name);
    tabs.delete(m.name);
    await t.page.close({ runBeforeUnload: false });
  },
  async closeClient(m) {
    clients.get(m.name)?.close();
    clients.delete(m.name);
  },
  async quit() {
    for (const c of clients.values()) c.close();
    if (browser) await browser.close();
    out({ ev: "bye" });
    process.exit(0);
  },
};

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  let m;
  try {
    m = JSON.parse(line);
  } catch {
    return out({ ev: "fail", error: "not JSON: " + line });
  }
  try {
    const result = await handlers[m.cmd](m);
    out({ ev: "done", seq: m.seq, result: result ?? null });
  } catch (err) {
    out({ ev: "done", seq: m.seq, error: String(err?.stack ?? err) });
  }
});
rl.on("close", () => handlers.quit());
out({ ev: "ready" });
