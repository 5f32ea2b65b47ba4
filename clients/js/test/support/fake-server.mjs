// A scripted server that speaks docs/sync-stream.md (positions, synced,
// reset) or, with positions: false, the protocol before it (ids, since by
// id): enough to drive the client through every path in unit tests,
// including the ones a real server only takes by accident (gaps, resets).
import http from "node:http";
import { WebSocketServer } from "ws";

export function jwt(claims) {
  const b = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return b({ alg: "none" }) + "." + b(claims) + ".sig";
}

export async function fakeServer({ positions = true } = {}) {
  const s = {
    positions,
    changes: [], // {pos, topic, data, counts}
    items: new Map(), // id -> item
    sockets: new Set(),
    urls: [], // every upgrade URL
    actions: [], // every action received
    skipLive: 0, // live frames not sent (a lost push)
    resetReason: null, // the next since gets reset
    refuse: null, // status the next upgrades get
    cached: null, // counts, kept up to date by create (a bench creates many)
    counts() {
      if (s.cached) return { ...s.cached };
      let unread = 0, unseen = 0, total = 0;
      for (const it of s.items.values()) {
        if (it.isArchived) continue;
        total++;
        if (!it.isRead) unread++;
        if (!it.isSeen) unseen++;
      }
      s.cached = { unread, unseen, total };
      return { unread, unseen, total };
    },
    pos() {
      return s.changes.length ? s.changes[s.changes.length - 1].pos : 0;
    },
    frame(c) {
      const f = { topic: c.topic, room: "signal/notification/u1", data: c.data };
      if (s.positions) {
        f.pos = c.pos;
        f.counts = c.counts;
      }
      return f;
    },
    /** create a notification and push it live */
    create(id, extra = {}) {
      const data = { id, type: "T", organizerId: null, content: "c " + id, actionUrl: null, data: {}, isRead: false, createdAt: new Date(Date.now() + s.changes.length).toISOString(), ...extra };
      const pos = s.pos() + 1;
      const c = s.counts();
      s.items.set(id, { ...data, isSeen: false, isArchived: false, pos });
      s.cached = { unread: c.unread + 1, unseen: c.unseen + 1, total: c.total + 1 };
      return s.push({ pos, topic: "observation/signal/notification/created", data });
    },
    update(data) {
      s.cached = null;
      for (const it of s.items.values()) {
        if (!data.all && !data.ids.includes(it.id)) continue;
        if (data.isDeleted) { s.items.delete(it.id); continue; }
        for (const k of ["isRead", "isSeen", "isArchived"]) if (k in data) it[k] = data[k];
      }
      return s.push({ pos: s.pos() + 1, topic: "observation/signal/notification/updated", data });
    },
    push(c) {
      c.counts = s.counts();
      s.changes.push(c);
      if (s.skipLive > 0) { s.skipLive--; return c; }
      for (const ws of s.sockets) ws.send(JSON.stringify(s.frame(c)));
      return c;
    },
    closeAll(code, reason = "") {
      for (const ws of s.sockets) ws.close(code, reason);
    },
    send(f) {
      for (const ws of s.sockets) ws.send(JSON.stringify(f));
    },
  };

  const catchUp = (ws, since) => {
    const room = "signal/notification/u1";
    let after = 0;
    if (s.positions) {
      after = /^\d+$/.test(since) ? Number(since) : s.changes.find((c) => c.data.id === since)?.pos ?? -1;
      if (s.resetReason || after < 0 || after > s.pos()) {
        const reason = s.resetReason ?? (after < 0 ? "unknown" : "ahead");
        s.resetReason = null;
        ws.send(JSON.stringify({ topic: "signal/system/reset", data: { room, pos: s.pos(), counts: s.counts(), reason } }));
        return;
      }
    } else {
      const i = s.changes.findIndex((c) => c.data.id === since);
      if (i < 0) {
        ws.send(JSON.stringify({ topic: "signal/system/error", data: { code: "unknown_since", message: "unknown", room } }));
        return;
      }
      after = s.changes[i].pos;
    }
    const missed = s.changes.filter((c) => c.pos > after && (s.positions || c.topic.endsWith("created")));
    ws.send(JSON.stringify({ topic: "signal/system/joined", data: { room, replayed: missed.length } }));
    for (const c of missed) ws.send(JSON.stringify(s.frame(c)));
    if (s.positions) ws.send(JSON.stringify({ topic: "signal/system/synced", data: { room, pos: s.pos(), counts: s.counts() } }));
  };

  const server = http.createServer((req, res) => {
    const u = new URL(req.url, "http://x");
    const json = (code, body) => {
      res.writeHead(code, { "Content-Type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (!String(req.headers.authorization ?? "").startsWith("Bearer ")) return json(401, { error: { code: "unauthorized", message: "no token" } });
    if (req.method === "GET" && u.pathname === "/notifications") {
      const all = [...s.items.values()].filter((it) => !it.isArchived).sort((a, b) => b.pos - a.pos);
      const start = Number(u.searchParams.get("cursor") ?? 0);
      const limit = Number(u.searchParams.get("limit") ?? 20);
      const items = all.slice(start, start + limit).map((it) => { const o = { ...it }; if (!s.positions) delete o.pos; return o; });
      const page = { items, nextCursor: start + limit < all.length ? String(start + limit) : null };
      if (s.positions) page.pos = s.pos();
      return json(200, page);
    }
    if (req.method === "GET" && u.pathname === "/notifications/counts") return json(200, s.positions ? { ...s.counts(), pos: s.pos() } : s.counts());
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      const b = body ? JSON.parse(body) : {};
      const m = u.pathname.match(/^\/notifications\/(read|seen|unread|archive|unarchive|delete)$/);
      if (req.method === "POST" && m) {
        const states = { read: { isRead: true, isSeen: true }, seen: { isSeen: true }, unread: { isRead: false }, archive: { isArchived: true }, unarchive: { isArchived: false }, delete: { isDeleted: true } }[m[1]];
        const ids = b.all ? [...s.items.keys()] : b.ids;
        s.update({ ids, ...(b.all ? { all: true } : {}), ...states });
        return json(200, { updated: ids.length });
      }
      const one = u.pathname.match(/^\/notifications\/([^/]+)\/(read|unread|archive|unarchive)$/);
      if (req.method === "POST" && one) {
        const states = { read: { isRead: true, isSeen: true }, unread: { isRead: false }, archive: { isArchived: true }, unarchive: { isArchived: false } }[one[2]];
        s.update({ ids: [one[1]], ...states });
        return json(200, s.items.get(one[1]) ?? {});
      }
      json(404, { error: { code: "not_found", message: "no route " + u.pathname } });
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    s.urls.push(req.url);
    if (s.refuse) {
      socket.end(`HTTP/1.1 ${s.refuse} No\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      s.sockets.add(ws);
      ws.on("close", () => s.sockets.delete(ws));
      ws.on("message", (raw) => {
        const a = JSON.parse(String(raw));
        s.actions.push(a);
        if (a.action === "ping") ws.send(JSON.stringify({ topic: "signal/system/pong", data: {} }));
        if (a.action === "refresh") ws.send(JSON.stringify({ topic: "signal/system/refreshed", data: { expiresAt: null } }));
        if (a.action === "join" && a.since !== undefined) catchUp(ws, String(a.since));
      });
      const u = new URL(req.url, "http://x");
      ws.send(JSON.stringify({ topic: "signal/system/welcome", data: { clientId: "c" + s.urls.length, rooms: ["signal/notification/u1"] } }));
      const since = u.searchParams.get("since");
      if (since) catchUp(ws, since);
      else if (s.positions) ws.send(JSON.stringify({ topic: "signal/system/synced", data: { room: "signal/notification/u1", pos: s.pos(), counts: s.counts() } }));
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  s.url = `http://127.0.0.1:${server.address().port}`;
  s.close = () => new Promise((r) => { for (const ws of s.sockets) ws.terminate(); wss.close(); server.close(r); });
  return s;
}

/** until polls cond every 10 ms for at most ms. */
export async function until(cond, ms = 5000, what = "condition") {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("timed out waiting for " + what);
}
