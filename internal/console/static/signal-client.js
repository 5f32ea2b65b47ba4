// @signal-notify/client for the web console, built from clients/js by `make console-bundle`.
// DO NOT EDIT: make test fails when it differs from what the sources build.
var __defProp = Object.defineProperty;
var __defNormalProp = (obj, key, value) => key in obj ? __defProp(obj, key, { enumerable: true, configurable: true, writable: true, value }) : obj[key] = value;
var __publicField = (obj, key, value) => __defNormalProp(obj, typeof key !== "symbol" ? key + "" : key, value);

// src/backoff.ts
function backoffDelay(attempt, opts, random = Math.random) {
  const window2 = Math.min(opts.max, opts.min * 2 ** Math.min(attempt, 31));
  return Math.floor(random() * window2);
}
function closeDelay(code, attempt, opts, random = Math.random) {
  if (code === 1008) {
    const window2 = Math.max(opts.max / 4, Math.min(opts.max, opts.min * 2 ** Math.min(attempt + 4, 31)));
    return Math.floor(opts.max / 8 + random() * window2);
  }
  return backoffDelay(attempt, opts, random);
}

// src/types.ts
var TOPIC = {
  welcome: "signal/system/welcome",
  joined: "signal/system/joined",
  left: "signal/system/left",
  synced: "signal/system/synced",
  reset: "signal/system/reset",
  refreshed: "signal/system/refreshed",
  pong: "signal/system/pong",
  error: "signal/system/error",
  created: "observation/signal/notification/created",
  updated: "observation/signal/notification/updated",
  removed: "observation/signal/notification/removed",
  read: "observation/signal/notification/read"
};
var SignalError = class extends Error {
  constructor(code, message, extra = {}) {
    super(message, extra.cause === void 0 ? void 0 : { cause: extra.cause });
    /** the API's error code (bad_request, unauthorized…), an error frame's code, or the client's own: token, closed, network, protocol, reset */
    __publicField(this, "code");
    /** the HTTP status of a REST error */
    __publicField(this, "status");
    /** the room of an error frame */
    __publicField(this, "room");
    /** the close code, for code "closed" */
    __publicField(this, "closeCode");
    this.name = "SignalError";
    this.code = code;
    if (extra.status !== void 0) this.status = extra.status;
    if (extra.room !== void 0) this.room = extra.room;
    if (extra.closeCode !== void 0) this.closeCode = extra.closeCode;
  }
};

// src/connection.ts
var OPEN = 1;
var Connection = class {
  constructor(o) {
    __publicField(this, "o", o);
    __publicField(this, "socket", null);
    __publicField(this, "running", false);
    __publicField(this, "suspended", false);
    __publicField(this, "attempt", 0);
    __publicField(this, "retryTimer");
    __publicField(this, "refreshTimer");
    __publicField(this, "pingTimer");
    __publicField(this, "pongTimer");
    __publicField(this, "refreshing", null);
    // the token sent with refresh, until refreshed
    __publicField(this, "using", null);
    // the token the open socket runs on
    __publicField(this, "liveSince", 0);
    __publicField(this, "opening", false);
  }
  /** reconnects since the stream was last live for long */
  get attempts() {
    return this.attempt;
  }
  get open() {
    return this.socket !== null && this.socket.readyState === OPEN;
  }
  start() {
    if (this.running) return;
    this.running = true;
    this.suspended = false;
    void this.openSocket();
  }
  /** stop closes the socket and does not reconnect. */
  stop() {
    this.running = false;
    this.drop(1e3, "client closed");
  }
  /** suspend closes the socket until resume (a frozen page, a lost leadership). */
  suspend() {
    if (!this.running || this.suspended) return;
    this.suspended = true;
    this.drop(1e3, "suspended");
  }
  resume() {
    if (!this.running || !this.suspended) return;
    this.suspended = false;
    this.attempt = 0;
    void this.openSocket();
  }
  /** send an action; false when no socket is open (it is not queued). */
  send(msg) {
    if (!this.open) return false;
    this.socket.send(JSON.stringify(msg));
    return true;
  }
  /** wake: reconnect now when waiting, or check the open socket with a ping. */
  wake() {
    if (!this.running || this.suspended) return;
    if (this.socket === null && !this.opening) {
      clearTimeout(this.retryTimer);
      void this.openSocket();
      return;
    }
    this.ping();
  }
  /** ping sends a ping and closes the socket when nothing comes back in time. */
  ping() {
    if (!this.open || this.pongTimer !== void 0) return;
    const s = this.socket;
    this.send({ action: "ping" });
    this.pongTimer = setTimeout(() => {
      this.pongTimer = void 0;
      if (this.socket === s) {
        this.o.hooks.error(new SignalError("timeout", "the server did not answer a ping: reconnecting"));
        this.lose(s, 4e3, "no answer to ping");
      }
    }, this.o.pongTimeout);
  }
  /** reconnect closes the socket and opens another at once (a gap to repair by reconnecting, a new token). */
  reconnect() {
    if (!this.running || this.suspended) return;
    if (this.socket) this.lose(this.socket, 4e3, "reconnect");
  }
  drop(code, reason) {
    this.clearTimers();
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onopen = s.onmessage = s.onclose = null;
      s.onerror = () => {
      };
      try {
        s.close(code, reason);
      } catch {
      }
    }
    this.o.hooks.connecting(false);
  }
  /** lose closes s as if the server had, and reconnects as after a close. */
  lose(s, code, reason) {
    s.onclose = null;
    s.onerror = () => {
    };
    try {
      s.close(code === 4e3 ? 4e3 : 1e3, reason);
    } catch {
    }
    this.closed(s, code, reason, true);
  }
  clearTimers() {
    clearTimeout(this.retryTimer);
    clearTimeout(this.refreshTimer);
    clearTimeout(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.retryTimer = this.refreshTimer = this.pingTimer = this.pongTimer = void 0;
    this.refreshing = null;
  }
  async openSocket() {
    if (!this.running || this.suspended || this.socket || this.opening) return;
    this.opening = true;
    this.o.hooks.connecting(true);
    let token;
    try {
      const t = this.o.tokens;
      token = (await t.get(t.refreshable && (t.expired() || (t.refreshIn() ?? 1) === 0))).token;
    } catch (err) {
      this.opening = false;
      this.o.hooks.error(new SignalError("token", "the token provider failed: " + (err?.message ?? err), { cause: err }));
      this.retry(1006);
      return;
    }
    this.opening = false;
    if (!this.running || this.suspended || this.socket) return;
    this.using = token;
    const u = new URL("socket/websocket", this.o.base);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    u.searchParams.set("token", token);
    const since = this.o.hooks.since();
    if (since !== null) u.searchParams.set("since", since);
    let s;
    try {
      s = new this.o.WebSocket(u.href);
    } catch (err) {
      this.o.hooks.error(new SignalError("network", "cannot open a WebSocket: " + (err?.message ?? err), { cause: err }));
      this.retry(1006);
      return;
    }
    this.socket = s;
    let opened = false;
    s.onopen = () => {
      opened = true;
    };
    s.onerror = () => {
    };
    s.onmessage = (ev) => {
      if (this.socket !== s) return;
      clearTimeout(this.pongTimer);
      this.pongTimer = void 0;
      this.armPing(s);
      let f;
      try {
        f = JSON.parse(typeof ev.data === "string" ? ev.data : String(ev.data));
      } catch {
        this.o.hooks.error(new SignalError("protocol", "a frame that is not JSON"));
        return;
      }
      if (!f || typeof f !== "object" || typeof f.topic !== "string") {
        this.o.hooks.error(new SignalError("protocol", "a frame without a topic"));
        return;
      }
      this.onFrame(f);
    };
    s.onclose = (ev) => {
      if (this.socket !== s) return;
      this.closed(s, opened ? ev.code : -1, ev.reason ?? "", opened);
    };
  }
  onFrame(f) {
    switch (f.topic) {
      case TOPIC.welcome:
        this.liveSince = Date.now();
        this.scheduleRefresh();
        this.o.hooks.welcome(f.data);
        break;
      case TOPIC.refreshed:
        if (this.refreshing !== null) {
          this.using = this.refreshing;
          this.refreshing = null;
          this.scheduleRefresh();
        }
        break;
      case TOPIC.error: {
        const d = f.data;
        if (this.refreshing !== null && !d?.room && (d?.code === "invalid_token" || d?.code === "forbidden")) {
          this.refreshing = null;
          this.o.hooks.error(new SignalError(d.code, "token refresh refused: " + (d.message ?? "")));
          this.refreshTimer = setTimeout(() => this.refresh(), 5e3 + (this.o.random ?? Math.random)() * 5e3);
        }
        break;
      }
    }
    this.o.hooks.frame(f);
  }
  armPing(s) {
    if (this.o.pingInterval <= 0) return;
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => {
      if (this.socket === s) this.ping();
    }, this.o.pingInterval);
  }
  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = void 0;
    if (!this.o.tokens.refreshable) return;
    const wait = this.o.tokens.refreshIn();
    if (wait === null) return;
    this.refreshTimer = setTimeout(() => this.refresh(), Math.min(wait, 2147483647));
  }
  /** refresh asks the provider for a new token and hands it to the open socket. */
  async refresh() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = void 0;
    const s = this.socket;
    let token;
    try {
      token = (await this.o.tokens.get(true)).token;
    } catch (err) {
      this.o.hooks.error(new SignalError("token", "the token provider failed: " + (err?.message ?? err), { cause: err }));
      if (this.socket === s && s) this.refreshTimer = setTimeout(() => this.refresh(), 5e3 + (this.o.random ?? Math.random)() * 5e3);
      return;
    }
    if (this.socket !== s || !this.open) return;
    if (token === this.using) {
      if (!this.o.tokens.expired()) this.refreshTimer = setTimeout(() => this.refresh(), 5e3 + (this.o.random ?? Math.random)() * 5e3);
      return;
    }
    this.refreshing = token;
    this.send({ action: "refresh", token });
  }
  closed(s, code, reason, opened) {
    if (this.socket !== s) return;
    this.socket = null;
    this.clearTimers();
    this.o.hooks.connecting(false);
    if (opened) this.o.hooks.closed(code, reason);
    if (!this.running) return;
    if (opened && this.liveSince && Date.now() - this.liveSince > 1e4) this.attempt = 0;
    this.liveSince = 0;
    if (code === 4001) {
      if (!this.o.tokens.refreshable) {
        this.running = false;
        this.o.hooks.error(new SignalError("token", "the token expired (4001) and no token provider can give another", { closeCode: 4001 }));
        return;
      }
      this.o.tokens.get(true).then(
        () => this.retry(0, 1e3),
        (err) => {
          this.o.hooks.error(new SignalError("token", "the token provider failed: " + (err?.message ?? err), { cause: err }));
          this.retry(1006);
        }
      );
      return;
    }
    if (!opened) {
      void this.o.hooks.tokenRefused().then((refused) => {
        if (!refused) return this.retry(1006);
        if (!this.o.tokens.refreshable) {
          this.running = false;
          this.o.hooks.error(new SignalError("unauthorized", "the server refused the token"));
          return;
        }
        this.o.tokens.get(true).then(
          () => this.retry(1006),
          () => this.retry(1006)
        );
      });
      return;
    }
    this.retry(code);
  }
  /** retry schedules the next socket after a close with code; window caps the delay. */
  retry(code, window2) {
    if (!this.running || this.suspended) return;
    const random = this.o.random ?? Math.random;
    const delay = window2 !== void 0 ? Math.floor(random() * window2) : closeDelay(code, this.attempt, this.o.backoff, random);
    this.attempt++;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = void 0;
      void this.openSocket();
    }, delay);
  }
};

// src/emitter.ts
var Emitter = class {
  constructor() {
    __publicField(this, "listeners", /* @__PURE__ */ new Map());
  }
  /** on adds a listener and returns the function that removes it. */
  on(event, fn) {
    let set = this.listeners.get(event);
    if (!set) {
      set = /* @__PURE__ */ new Set();
      this.listeners.set(event, set);
    }
    set.add(fn);
    return () => this.off(event, fn);
  }
  off(event, fn) {
    this.listeners.get(event)?.delete(fn);
  }
  emit(event, value) {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(value);
      } catch (err) {
        if (event !== "error" && this.listeners.get("error")?.size) {
          this.emit("error", err);
        } else {
          console.error("@signal-notify/client: a listener threw", err);
        }
      }
    }
  }
};

// src/stream.ts
var RecentSet = class {
  constructor(limit) {
    __publicField(this, "limit", limit);
    __publicField(this, "set", /* @__PURE__ */ new Set());
  }
  has(v) {
    return this.set.has(v);
  }
  add(v) {
    if (this.set.has(v)) return;
    this.set.add(v);
    if (this.set.size > this.limit) {
      const oldest = this.set.values().next().value;
      if (oldest !== void 0) this.set.delete(oldest);
    }
  }
  clear() {
    this.set.clear();
  }
};
function isChange(f, room) {
  if (room === null || f.room !== room) return false;
  if (typeof f.pos === "number") return true;
  return f.topic === TOPIC.created || f.topic === TOPIC.updated;
}
var Sequencer = class {
  constructor() {
    /** position of the last change applied; null before the first synced, reset or positioned change */
    __publicField(this, "pos", null);
    /** id of the last created change applied (the resume point of servers without positions) */
    __publicField(this, "lastId", null);
    /** the server numbers its changes (it sent pos or synced) */
    __publicField(this, "positioned", false);
    /** a catch-up is running (joined with since … synced): its frames come in order, gaps included */
    __publicField(this, "catchingUp", false);
    __publicField(this, "ids", new RecentSet(5e3));
  }
  /** since is the resume point for ?since= or join: the position, else the last id. */
  since() {
    if (this.pos !== null) return String(this.pos);
    return this.lastId;
  }
  judge(f) {
    const id = f.topic === TOPIC.created ? idOf(f.data) : null;
    if (typeof f.pos === "number") {
      this.positioned = true;
      if (this.pos !== null && f.pos <= this.pos) return "repeat";
      if (this.pos !== null && f.pos > this.pos + 1 && !this.catchingUp) return "gap";
      return "apply";
    }
    if (id !== null && this.ids.has(id)) return "repeat";
    return "apply";
  }
  /** applied records a change as applied. */
  applied(f) {
    if (typeof f.pos === "number") this.pos = f.pos;
    if (f.topic === TOPIC.created) {
      const id = idOf(f.data);
      if (id !== null) {
        this.ids.add(id);
        this.lastId = id;
      }
    }
  }
  /** at moves the cursor to pos (synced, reset, a snapshot). */
  at(pos) {
    this.positioned = true;
    this.pos = pos;
  }
  forget() {
    this.pos = null;
    this.lastId = null;
    this.catchingUp = false;
    this.ids.clear();
  }
};
function idOf(data) {
  const id = data?.id;
  return typeof id === "string" ? id : null;
}

// src/inbox.ts
var MAX_IDS = 1e3;
var Inbox = class {
  constructor(rest, hooks, pageSize = 20) {
    __publicField(this, "rest", rest);
    __publicField(this, "hooks", hooks);
    __publicField(this, "pageSize", pageSize);
    __publicField(this, "byId", /* @__PURE__ */ new Map());
    __publicField(this, "list", []);
    // oldest first: new items are appended (the snapshot reverses it)
    __publicField(this, "archived", /* @__PURE__ */ new Map());
    // items archived here, to bring back on unarchive
    __publicField(this, "countsValue", null);
    __publicField(this, "next", null);
    __publicField(this, "loadedFlag", false);
    __publicField(this, "loadingCount", 0);
    __publicField(this, "snapshot", null);
    __publicField(this, "listeners", /* @__PURE__ */ new Set());
    __publicField(this, "recording", null);
    // changes applied while a reload runs
    __publicField(this, "countsTimer");
    __publicField(this, "generation", 0);
    /** set by the client: the server sends counts with its changes */
    __publicField(this, "positioned", false);
    // --- what a UI reads ---
    __publicField(this, "getSnapshot", () => {
      if (!this.snapshot) {
        this.snapshot = Object.freeze({
          items: Object.freeze(this.list.slice().reverse()),
          counts: this.countsValue,
          loaded: this.loadedFlag,
          loading: this.loadingCount > 0,
          hasMore: this.next !== null
        });
      }
      return this.snapshot;
    });
    __publicField(this, "subscribe", (fn) => {
      this.listeners.add(fn);
      return () => this.listeners.delete(fn);
    });
  }
  get items() {
    return this.getSnapshot().items;
  }
  get counts() {
    return this.countsValue;
  }
  get hasMore() {
    return this.next !== null;
  }
  /** find an item loaded here */
  get(id) {
    return this.byId.get(id);
  }
  // --- loading ---
  /**
   * load (re)loads the first page and the counts. Changes that arrive while
   * it runs are applied again on top of the page (changes are idempotent),
   * so nothing that happens meanwhile is lost.
   */
  async load() {
    const gen = ++this.generation;
    const recorded = [];
    this.recording = recorded;
    this.loadingCount++;
    this.changed();
    try {
      const [page, counts] = await Promise.all([this.rest.page({ limit: this.pageSize }), this.rest.counts()]);
      if (gen !== this.generation) return;
      this.byId.clear();
      this.list = [];
      this.archived.clear();
      this.addPage(page);
      this.setCounts(counts, true);
      this.loadedFlag = true;
      this.recording = null;
      for (const f of recorded) this.apply(f);
    } finally {
      if (this.recording === recorded) this.recording = null;
      this.loadingCount--;
      this.changed();
    }
  }
  /** loadMore loads the next older page, if any. */
  async loadMore() {
    if (!this.loadedFlag) return this.load();
    if (this.next === null) return;
    const gen = this.generation;
    this.loadingCount++;
    this.changed();
    try {
      const page = await this.rest.page({ limit: this.pageSize, cursor: this.next });
      if (gen !== this.generation) return;
      this.addPage(page);
    } finally {
      this.loadingCount--;
      this.changed();
    }
  }
  /** page reads any page of the inbox or archive (REST only: not kept live). */
  page(q = {}) {
    return this.rest.page(q);
  }
  /** refreshCounts reads the counts from the server. */
  async refreshCounts() {
    const c = await this.rest.counts();
    this.setCounts(c, true);
    this.changed();
    return c;
  }
  addPage(page) {
    const older = [];
    for (const it of page.items ?? []) {
      if (this.byId.has(it.id)) continue;
      this.byId.set(it.id, it);
      older.push(it);
    }
    this.list = older.reverse().concat(this.list);
    this.next = page.nextCursor ?? null;
  }
  // --- changes from the stream ---
  /** apply one change of the stream (already judged in order by the client). */
  apply(f) {
    this.recording?.push(f);
    if (f.topic === TOPIC.created) {
      const id = idOf(f.data);
      if (id !== null && !this.byId.has(id) && !this.archived.has(id)) {
        const item = { ...f.data, isSeen: false, isArchived: false };
        if (typeof f.pos === "number") item.pos = f.pos;
        this.insert(item);
      }
    } else if (f.topic === TOPIC.updated) {
      this.applyStates(f.data, f.pos);
    } else if (f.topic === TOPIC.removed) {
      const ids = f.data?.ids ?? [];
      this.applyStates({ ids, isDeleted: true }, f.pos);
    }
    if (f.counts) this.setCounts(typeof f.pos === "number" ? { ...f.counts, pos: f.pos } : f.counts, false);
    else if (!this.positioned && (f.topic === TOPIC.created || f.topic === TOPIC.updated)) this.countsSoon();
    this.changed();
  }
  /** setCounts takes counts from a frame (synced, reset) or the server. */
  setCounts(c, fromRest) {
    const old = this.countsValue;
    if (old && typeof old.pos === "number" && typeof c.pos === "number" && c.pos < old.pos) return;
    const next = { unread: c.unread, unseen: c.unseen, total: c.total };
    if (typeof c.pos === "number") next.pos = c.pos;
    this.countsValue = next;
    if (!old || old.unread !== next.unread || old.unseen !== next.unseen || old.total !== next.total) {
      this.hooks.counts(next);
    }
    this.changed();
  }
  /** clear forgets everything (a reset, before load). */
  clear() {
    this.generation++;
    this.byId.clear();
    this.list = [];
    this.archived.clear();
    this.next = null;
    this.loadedFlag = false;
    this.changed();
  }
  applyStates(d, pos) {
    if (!d || typeof d !== "object") return;
    let targets;
    if (d.all) {
      targets = [...this.list, ...this.archived.values()].filter((it) => pos === void 0 || it.pos === void 0 || it.pos < pos);
    } else {
      targets = [];
      for (const id of d.ids ?? []) {
        const it = this.byId.get(id) ?? this.archived.get(id);
        if (it) targets.push(it);
        else if (d.isArchived === false && !d.isDeleted) this.fetchBack(id);
      }
    }
    const next = /* @__PURE__ */ new Map();
    const back = [];
    for (const old of targets) {
      const it = { ...old };
      if (typeof d.isRead === "boolean") it.isRead = d.isRead;
      if (typeof d.isSeen === "boolean") it.isSeen = d.isSeen;
      if (typeof d.isArchived === "boolean") it.isArchived = d.isArchived;
      applyFields(it, d);
      const listed = this.byId.has(it.id);
      this.archived.delete(it.id);
      if (d.isDeleted || it.isArchived) {
        if (listed) next.set(it.id, null);
        this.byId.delete(it.id);
        if (!d.isDeleted) this.archived.set(it.id, it);
      } else if (listed) {
        next.set(it.id, it);
        this.byId.set(it.id, it);
      } else {
        back.push(it);
      }
    }
    if (next.size > 0) {
      const list = [];
      for (const it of this.list) {
        const n = next.has(it.id) ? next.get(it.id) : it;
        if (n) list.push(n);
      }
      this.list = list;
    }
    for (const it of back) this.insert(it);
  }
  /** fetchBack brings an unarchived item this store never had. */
  fetchBack(id) {
    const gen = this.generation;
    this.rest.item(id).then(
      (it) => {
        if (gen !== this.generation || this.byId.has(id) || it.isArchived) return;
        const oldest = this.list[0];
        if (this.next !== null && oldest && compare(it, oldest) > 0) return;
        this.insert(it);
        this.changed();
      },
      (err) => {
        if (err.status !== 404) this.hooks.error(err);
      }
    );
  }
  insert(it) {
    this.byId.set(it.id, it);
    let i = this.list.length;
    while (i > 0 && compare(this.list[i - 1], it) < 0) i--;
    if (i === this.list.length) this.list.push(it);
    else this.list.splice(i, 0, it);
  }
  countsSoon() {
    if (this.countsTimer !== void 0) return;
    this.countsTimer = setTimeout(() => {
      this.countsTimer = void 0;
      this.refreshCounts().catch((err) => this.hooks.error(err));
    }, 150);
  }
  changed() {
    this.snapshot = null;
    for (const fn of [...this.listeners]) fn();
  }
  /** stop cancels background work (close). */
  stop() {
    clearTimeout(this.countsTimer);
    this.countsTimer = void 0;
  }
  // --- changes made here (REST); the stream confirms them on every device ---
  /** markSeen: one id, many or "all". */
  markSeen(target) {
    return this.change("seen", target, { isSeen: true }, true);
  }
  /** markRead (and seen): one id, many or "all". */
  markRead(target) {
    return this.change("read", target, { isRead: true, isSeen: true }, true);
  }
  markUnread(target) {
    return this.change("unread", target, { isRead: false }, false);
  }
  archive(target) {
    return this.change("archive", target, { isArchived: true }, false);
  }
  unarchive(target) {
    return this.change("unarchive", target, { isArchived: false }, false);
  }
  /** delete: one id, many or "all" (cannot be undone). */
  delete(target) {
    return this.change("delete", target, { isDeleted: true }, true);
  }
  preferences() {
    return this.rest.preferences();
  }
  setPreferences(p) {
    return this.rest.setPreferences(p);
  }
  /**
   * change applies the states here at once (the UI does not wait), then asks
   * the server; the updated frame that follows sets the same states. When the
   * server refuses, the inbox is loaded again so it shows the truth.
   */
  async change(verb, target, states, allowAll) {
    if (target === "all") {
      if (!allowAll) throw new SignalError("bad_request", `${verb} takes ids, not "all"`);
    }
    const ids = target === "all" ? [] : typeof target === "string" ? [target] : [...target];
    if (target !== "all" && ids.length === 0) return 0;
    this.applyStates(target === "all" ? { ids: [], all: true, ...states } : { ids, ...states }, void 0);
    this.changed();
    try {
      if (target === "all") {
        const r = await this.rest.call("POST", `notifications/${verb}`, { all: true });
        return r.updated;
      }
      if (ids.length === 1 && verb !== "seen") {
        const path = "notifications/" + encodeURIComponent(ids[0]);
        if (verb === "delete") {
          await this.rest.call("DELETE", path);
        } else {
          await this.rest.call("POST", path + "/" + verb);
        }
        return 1;
      }
      let updated = 0;
      for (let i = 0; i < ids.length; i += MAX_IDS) {
        const r = await this.rest.call("POST", `notifications/${verb}`, { ids: ids.slice(i, i + MAX_IDS) });
        updated += r.updated;
      }
      return updated;
    } catch (err) {
      this.load().catch((e) => this.hooks.error(e));
      throw err;
    }
  }
};
function applyFields(it, d) {
  if (typeof d.content === "string") it.content = d.content;
  if (typeof d.actionUrl === "string") it.actionUrl = d.actionUrl === "" ? null : d.actionUrl;
  if (d.data && typeof d.data === "object") it.data = d.data;
  if (typeof d.count === "number") it.count = d.count;
  if (Array.isArray(d.actors)) it.actors = d.actors;
}
function compare(a, b) {
  if (typeof a.pos === "number" && typeof b.pos === "number") return b.pos - a.pos;
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

// src/rest.ts
var Rest = class {
  constructor(base, tokens, fetcher) {
    __publicField(this, "base", base);
    __publicField(this, "tokens", tokens);
    __publicField(this, "fetcher", fetcher);
  }
  async call(method, path, body) {
    for (let attempt = 0; ; attempt++) {
      const held = await this.tokens.get(attempt > 0);
      const headers = { Authorization: "Bearer " + held.token };
      const init = { method, headers, cache: "no-store", credentials: "omit" };
      if (body !== void 0) {
        headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      let resp;
      try {
        resp = await this.fetcher(new URL(path, this.base).href, init);
      } catch (err) {
        throw new SignalError("network", `${method} ${path}: ${err?.message ?? err}`, { cause: err });
      }
      if (resp.status === 401 && attempt === 0 && this.tokens.refreshable) {
        await resp.body?.cancel();
        continue;
      }
      if (resp.status === 204) return void 0;
      let json = null;
      try {
        json = await resp.json();
      } catch {
      }
      if (!resp.ok) {
        const e = json?.error;
        throw new SignalError(e?.code ?? "http", `${method} ${path}: ${e?.message ?? resp.status + " " + resp.statusText}`, { status: resp.status });
      }
      return json;
    }
  }
  page(q = {}) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) {
      if (v === void 0 || v === null || v === false || v === "") continue;
      p.set(k, String(v));
    }
    const qs = p.toString();
    return this.call("GET", "notifications" + (qs ? "?" + qs : ""));
  }
  counts() {
    return this.call("GET", "notifications/counts");
  }
  item(id) {
    return this.call("GET", "notifications/" + encodeURIComponent(id));
  }
  preferences() {
    return this.call("GET", "preferences");
  }
  setPreferences(p) {
    return this.call("PUT", "preferences", p);
  }
};

// src/share.ts
var HEARTBEAT = 1e3;
var SILENCE = 3e3;
function share(name, hooks) {
  if (typeof BroadcastChannel === "undefined") return null;
  const locks = globalThis.navigator?.locks;
  const id = Math.random().toString(36).slice(2) + Date.now().toString(36);
  const channel = new BroadcastChannel(name);
  let role = "follower";
  let closed = false;
  let released = false;
  const setRole = (r) => {
    if (r === role) return;
    role = r;
    hooks.role(r);
  };
  let unlock = null;
  let abort = null;
  const requestLock = () => {
    if (!locks) return;
    abort = new AbortController();
    locks.request(name, { signal: abort.signal }, () => {
      if (closed || released) return Promise.resolve();
      setRole("leader");
      return new Promise((resolve) => {
        unlock = resolve;
      });
    }).catch(() => {
    });
  };
  const dropLock = () => {
    abort?.abort();
    abort = null;
    unlock?.();
    unlock = null;
    setRole("follower");
  };
  let lastBeat = Date.now();
  let leaderId = null;
  let timer;
  const tick = () => {
    if (closed || released) return;
    if (role === "leader") {
      channel.postMessage({ t: "beat", from: id });
      return;
    }
    if (Date.now() - lastBeat > SILENCE) {
      leaderId = id;
      lastBeat = Date.now();
      channel.postMessage({ t: "beat", from: id });
      setRole("leader");
    }
  };
  channel.onmessage = (ev) => {
    const msg = ev.data;
    if (!msg || typeof msg !== "object") return;
    if (!locks && msg.t === "beat" && typeof msg.from === "string") {
      if (role === "leader" && msg.from < id) setRole("follower");
      if (role !== "leader" || msg.from < id) {
        leaderId = msg.from;
        lastBeat = Date.now();
      }
      return;
    }
    if (!locks && msg.t === "bye" && msg.from === leaderId) lastBeat = 0;
    hooks.message(msg);
  };
  const start = () => {
    if (locks) requestLock();
    else {
      lastBeat = Date.now() - SILENCE + HEARTBEAT + Math.random() * HEARTBEAT;
      timer = setInterval(tick, HEARTBEAT / 2);
    }
  };
  start();
  return {
    id,
    get role() {
      return role;
    },
    post(msg) {
      if (!closed) channel.postMessage(msg);
    },
    release() {
      if (released || closed) return;
      released = true;
      if (locks) dropLock();
      else {
        if (role === "leader") channel.postMessage({ t: "bye", from: id });
        clearInterval(timer);
        setRole("follower");
      }
    },
    resume() {
      if (!released || closed) return;
      released = false;
      start();
    },
    close() {
      if (closed) return;
      if (!locks && role === "leader") channel.postMessage({ t: "bye", from: id });
      closed = true;
      clearInterval(timer);
      dropLock();
      channel.close();
    }
  };
}

// src/token.ts
function decodeClaims(token) {
  const part = token.split(".")[1];
  if (!part) return {};
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "=".repeat((4 - b64.length % 4) % 4);
    const bin = atob(padded);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === "object" ? claims : {};
  } catch {
    return {};
  }
}
var TokenSource = class {
  constructor(provider, now = Date.now) {
    __publicField(this, "provider", provider);
    __publicField(this, "now", now);
    __publicField(this, "current", null);
    __publicField(this, "pending", null);
  }
  /** refreshable: a provider can give a new token; a fixed string cannot. */
  get refreshable() {
    return typeof this.provider === "function";
  }
  get held() {
    return this.current;
  }
  /** get answers the token held, or asks the provider when there is none (or force). */
  get(force = false) {
    if (this.current && !force) return Promise.resolve(this.current);
    if (this.pending) return this.pending;
    const p = (async () => {
      const raw = typeof this.provider === "function" ? await this.provider() : this.provider;
      if (typeof raw !== "string" || raw === "") throw new Error("the token provider gave no token");
      const held = this.current?.token === raw ? this.current : { token: raw, claims: decodeClaims(raw), at: this.now() };
      this.current = held;
      return held;
    })();
    this.pending = p;
    const clear = () => {
      if (this.pending === p) this.pending = null;
    };
    p.then(clear, clear);
    return p;
  }
  /**
   * refreshIn is how long (ms, from now) to wait before asking for the next
   * token: a quarter of its lifetime before exp, at most 60 s before, at
   * least 2 s before. The lifetime is exp − iat, measured from when the token
   * was obtained, so a skewed local clock does not matter; without iat, exp
   * is compared with the local clock. null: the token has no exp.
   */
  refreshIn(held = this.current) {
    if (!held || typeof held.claims.exp !== "number") return null;
    const { exp, iat } = held.claims;
    const expiresAt = typeof iat === "number" && iat <= exp ? held.at + (exp - iat) * 1e3 : exp * 1e3;
    const lifetime = typeof iat === "number" && iat <= exp ? (exp - iat) * 1e3 : expiresAt - held.at;
    const lead = Math.max(2e3, Math.min(6e4, lifetime / 4));
    return Math.max(0, expiresAt - lead - this.now());
  }
  /** expired: the held token's exp has passed by the local clock. */
  expired() {
    const exp = this.current?.claims.exp;
    return typeof exp === "number" && exp * 1e3 <= this.now();
  }
};

// src/client.ts
var CHANNEL_PREFIX = "@signal-notify/client";
var RING = 1e3;
var Client = class extends Emitter {
  constructor(o) {
    super();
    __publicField(this, "o", o);
    __publicField(this, "inbox");
    __publicField(this, "stats", { reconnects: 0, closes: {}, repeats: 0, gaps: 0, resets: 0, refreshes: 0, applied: 0 });
    __publicField(this, "base");
    __publicField(this, "tokens");
    __publicField(this, "rest");
    __publicField(this, "seq", new Sequencer());
    __publicField(this, "conn", null);
    __publicField(this, "shared", null);
    __publicField(this, "started", false);
    __publicField(this, "stateValue", "offline");
    __publicField(this, "roleValue", "standalone");
    __publicField(this, "ownRoom", null);
    __publicField(this, "clientIdValue", null);
    __publicField(this, "roomsValue", /* @__PURE__ */ new Set());
    __publicField(this, "repairing", false);
    __publicField(this, "sockets", 0);
    __publicField(this, "loadedOnce", false);
    __publicField(this, "ring", []);
    __publicField(this, "followed", false);
    // a follower that had the leader's status once
    __publicField(this, "wanted", /* @__PURE__ */ new Set());
    // rooms joined by hand, joined again after a reconnect
    __publicField(this, "cleanup", []);
    __publicField(this, "fetcher");
    if (!o || typeof o.url !== "string") throw new TypeError("createClient: url is required");
    if (typeof o.token !== "string" && typeof o.token !== "function") throw new TypeError("createClient: token must be a string or a function");
    const base = new URL(o.url);
    if (base.protocol !== "http:" && base.protocol !== "https:") throw new TypeError("createClient: url must be an http or https URL");
    if (!base.pathname.endsWith("/")) base.pathname += "/";
    base.search = "";
    base.hash = "";
    this.base = base;
    const f = o.fetch ?? (globalThis.fetch ? globalThis.fetch.bind(globalThis) : void 0);
    if (!f) throw new TypeError("createClient: no fetch: pass one in options.fetch");
    this.fetcher = f;
    this.tokens = new TokenSource(o.token);
    this.rest = new Rest(this.base, this.tokens, this.fetcher);
    this.inbox = new Inbox(this.rest, { error: (e) => this.emit("error", e), counts: (c) => this.emit("counts", c) }, o.pageSize ?? 20);
  }
  get state() {
    return this.stateValue;
  }
  /** leader, follower, or standalone (a socket of its own) */
  get role() {
    return this.roleValue;
  }
  /** the server's id of this connection (the leader's, in a follower) */
  get clientId() {
    return this.clientIdValue;
  }
  /** rooms the connection is in (the leader's own connection only) */
  get rooms() {
    return this.roomsValue;
  }
  /** the resume point: the position of the last change applied (or the last notification id, on servers without positions) */
  get cursor() {
    return this.seq.since();
  }
  /** connect starts the client: it connects and stays connected until close(). */
  async connect() {
    if (this.started) return;
    this.started = true;
    this.setState("connecting");
    let sub;
    try {
      sub = (await this.tokens.get()).claims.sub;
    } catch (err) {
      this.emit("error", new SignalError("token", "the token provider failed: " + (err?.message ?? err), { cause: err }));
    }
    if (!this.started) return;
    if (sub) this.ownRoom = "signal/notification/" + sub;
    this.watchPage();
    const wantShare = this.o.share ?? (typeof document !== "undefined" && typeof window !== "undefined");
    if (wantShare && sub) {
      this.shared = share(`${CHANNEL_PREFIX} ${this.base.href} ${sub}`, {
        role: (r) => this.onRole(r),
        message: (m) => this.onShared(m)
      });
    }
    if (this.shared) {
      this.roleValue = "follower";
      this.emit("role", "follower");
      this.shared.post({ t: "hello", from: this.shared.id });
      if (this.shared.role === "leader") this.onRole("leader");
    } else {
      this.lead();
    }
  }
  /** close stops for good: the socket is closed and nothing reconnects. */
  close() {
    if (!this.started) return;
    this.started = false;
    this.conn?.stop();
    this.conn = null;
    this.shared?.close();
    this.shared = null;
    for (const fn of this.cleanup.splice(0)) fn();
    this.inbox.stop();
    this.setState("offline");
  }
  /**
   * join a room the token's rooms claim allows; the client joins it again
   * after each reconnect, until leave() or a refusal. since replays a
   * notification room from that point.
   */
  join(room, since) {
    if (room !== this.ownRoom) this.wanted.add(room);
    return this.sendJoin(room, since);
  }
  leave(room) {
    this.wanted.delete(room);
    return this.conn?.send({ action: "leave", room }) ?? false;
  }
  sendJoin(room, since) {
    const msg = { action: "join", room };
    if (since !== void 0 && since !== null) msg["since"] = String(since);
    return this.conn?.send(msg) ?? false;
  }
  /** refreshToken asks the token provider for a new token now and hands it to the open socket. */
  refreshToken() {
    return this.conn ? this.conn.refresh() : this.tokens.get(true).then(() => void 0);
  }
  // --- the socket (leader or standalone) ---
  lead() {
    if (this.conn || !this.started) return;
    const conn = new Connection({
      base: this.base,
      tokens: this.tokens,
      WebSocket: this.o.WebSocket ?? globalThis.WebSocket ?? missingWebSocket(),
      backoff: { min: this.o.backoff?.min ?? 500, max: this.o.backoff?.max ?? 3e4 },
      pingInterval: this.o.pingInterval ?? 3e4,
      pongTimeout: this.o.pongTimeout ?? 1e4,
      hooks: {
        since: () => this.seq.since(),
        welcome: (d) => this.onWelcome(d),
        frame: (f) => this.onFrame(f),
        connecting: (on) => {
          if (on) {
            if (this.sockets++ > 0) this.stats.reconnects++;
            this.setState("connecting");
          } else if (this.started) this.setState("offline");
        },
        closed: (code) => {
          this.stats.closes[code] = (this.stats.closes[code] ?? 0) + 1;
          this.roomsValue.clear();
          this.repairing = false;
          this.seq.catchingUp = false;
          if (code !== 1e3 && code !== 1001 && code !== 1012 && code !== 4e3) {
            this.emit("error", new SignalError("closed", `the server closed the connection (${code})`, { closeCode: code }));
          }
        },
        error: (e) => this.emit("error", e),
        tokenRefused: () => this.probeToken()
      }
    });
    this.conn = conn;
    conn.start();
  }
  async probeToken() {
    const held = this.tokens.held;
    if (!held) return false;
    try {
      const r = await this.fetcher(new URL("notifications/counts", this.base).href, {
        headers: { Authorization: "Bearer " + held.token },
        cache: "no-store",
        credentials: "omit"
      });
      await r.body?.cancel();
      return r.status === 401;
    } catch {
      return false;
    }
  }
  onWelcome(d) {
    this.clientIdValue = d?.clientId ?? null;
    this.roomsValue = new Set(d?.rooms ?? []);
    if (!this.ownRoom) this.ownRoom = (d?.rooms ?? []).find((r) => r.startsWith("signal/notification/")) ?? null;
    for (const room of this.wanted) if (!this.roomsValue.has(room)) this.sendJoin(room);
    if (!this.seq.positioned) {
      if (this.loadedOnce) this.inbox.load().catch((e) => this.emit("error", e));
      this.becameLive();
    }
  }
  becameLive() {
    this.setState("live");
    if (!this.loadedOnce && (this.o.autoload ?? true)) {
      this.loadedOnce = true;
      this.inbox.load().catch((e) => this.emit("error", e));
    }
  }
  onFrame(f) {
    const d = f.data;
    const own = this.ownRoom !== null && (f.room === this.ownRoom || d?.["room"] === this.ownRoom);
    switch (f.topic) {
      case TOPIC.welcome:
        this.emit("frame", f);
        this.relay({ t: "frame", f });
        return;
      case TOPIC.joined:
        if (typeof d?.["room"] === "string") this.roomsValue.add(d["room"]);
        if (own && typeof d?.["replayed"] === "number") this.seq.catchingUp = true;
        break;
      case TOPIC.left:
        if (typeof d?.["room"] === "string") this.roomsValue.delete(d["room"]);
        break;
      case TOPIC.synced:
        if (own) this.onSynced(f);
        break;
      case TOPIC.reset:
        if (own) this.onReset(f);
        break;
      case TOPIC.refreshed:
        this.stats.refreshes++;
        break;
      case TOPIC.error:
        this.onErrorFrame(f, own);
        break;
    }
    if (isChange(f, this.ownRoom)) {
      this.onChange(f);
      return;
    }
    this.emit("frame", f);
    this.relay({ t: "frame", f });
  }
  onSynced(f) {
    const d = f.data;
    this.seq.catchingUp = false;
    this.repairing = false;
    if (typeof d.pos === "number") {
      if (this.seq.pos === null || this.seq.pos > d.pos) {
        this.seq.at(Math.max(d.pos, this.seq.pos ?? d.pos));
      } else if (this.seq.pos < d.pos) {
        this.gap();
      }
      this.seq.positioned = true;
    }
    if (d.counts) this.inbox.setCounts({ ...d.counts, ...typeof d.pos === "number" ? { pos: d.pos } : {} }, false);
    this.relay({ t: "synced", pos: this.seq.pos, counts: d.counts });
    this.becameLive();
  }
  onReset(f) {
    const d = f.data;
    this.stats.resets++;
    this.seq.forget();
    if (typeof d.pos === "number") this.seq.at(d.pos);
    this.repairing = false;
    this.ring = [];
    this.inbox.clear();
    if (d.counts) this.inbox.setCounts(d.counts, false);
    this.loadedOnce = true;
    this.inbox.load().catch((e) => this.emit("error", e));
    const ev = { reason: d.reason ?? "unknown" };
    if (typeof d.pos === "number") ev.pos = d.pos;
    this.emit("reset", ev);
    this.relay({ t: "reset", pos: d.pos, reason: ev.reason });
    this.setState("live");
  }
  onErrorFrame(f, own) {
    const d = f.data;
    const code = d?.code ?? "error";
    const extra = {};
    if (d?.room !== void 0) extra.room = d.room;
    this.emit("error", new SignalError(code, d?.message ?? code, extra));
    if (d?.room && d.room !== this.ownRoom && code !== "rate_limited") this.wanted.delete(d.room);
    if (!own) return;
    if (code === "replay_truncated" || code === "unknown_since" || code === "invalid_since") {
      this.stats.resets++;
      if (code !== "replay_truncated") this.seq.forget();
      this.inbox.load().catch((e) => this.emit("error", e));
      this.emit("reset", { reason: code });
      this.relay({ t: "reset", reason: code });
    }
  }
  onChange(f) {
    const v = this.seq.judge(f);
    if (v === "repeat") {
      this.stats.repeats++;
      this.emit("repeat", f);
      return;
    }
    if (v === "gap") {
      this.gap();
      return;
    }
    this.applyChange(f);
    this.ring.push(f);
    if (this.ring.length > RING) this.ring.shift();
    this.relay({ t: "change", f });
  }
  /** gap repairs a missing change: join the own room again since the cursor (once until it is answered). */
  gap() {
    this.stats.gaps++;
    if (this.repairing || !this.ownRoom) return;
    this.repairing = true;
    const since = this.seq.since();
    if (!this.sendJoin(this.ownRoom, since)) this.conn?.reconnect();
  }
  applyChange(f) {
    this.seq.applied(f);
    this.stats.applied++;
    this.inbox.positioned = this.seq.positioned;
    this.inbox.apply(f);
    const kind = f.topic === TOPIC.created ? "created" : f.topic === TOPIC.updated ? "updated" : "other";
    const change = { topic: f.topic, kind, data: f.data };
    if (typeof f.pos === "number") change.pos = f.pos;
    if (f.counts) change.counts = f.counts;
    this.emit("frame", f);
    this.emit("change", change);
    if (kind === "created") {
      const n = { ...f.data };
      if (typeof f.pos === "number") n.pos = f.pos;
      this.emit("notification", n);
    }
  }
  setState(s) {
    if (s === this.stateValue) return;
    this.stateValue = s;
    this.emit("state", s);
    if (this.roleValue === "leader") this.relay({ t: "state", s });
  }
  // --- sharing between tabs ---
  relay(msg) {
    if (this.shared && this.roleValue === "leader") this.shared.post(msg);
  }
  onRole(r) {
    if (!this.started || r === this.roleValue) return;
    this.roleValue = r;
    this.emit("role", r);
    if (r === "leader") {
      this.lead();
    } else {
      this.conn?.stop();
      this.conn = null;
      this.shared?.post({ t: "hello", from: this.shared.id });
    }
  }
  onShared(m) {
    if (!m || typeof m !== "object" || !this.started) return;
    if (this.roleValue === "leader") {
      if (m.t === "hello") {
        this.shared.post({ t: "status", to: m.from, s: this.stateValue, pos: this.seq.pos, lastId: this.seq.lastId, positioned: this.seq.positioned, counts: this.inbox.counts, clientId: this.clientIdValue });
      } else if (m.t === "since") {
        this.shared.post({ t: "catchup", to: m.from, ...this.since(m.pos, m.lastId) });
      }
      return;
    }
    const me = this.shared?.id;
    switch (m.t) {
      case "status":
        if (m.to !== me) return;
        this.clientIdValue = m.clientId ?? null;
        if (m.positioned) this.seq.positioned = true;
        if (typeof m.pos === "number") {
          if (this.seq.pos === null) this.seq.at(m.pos);
          else if (m.pos > this.seq.pos) this.shared.post({ t: "since", from: me, pos: this.seq.pos });
        } else if (!this.followed && this.seq.lastId === null && typeof m.lastId === "string") {
          this.seq.lastId = m.lastId;
        } else if (this.followed && m.lastId !== this.seq.lastId) {
          this.shared.post({ t: "since", from: me, lastId: this.seq.lastId });
        }
        this.followed = true;
        if (m.counts) this.inbox.setCounts(m.counts, false);
        this.setState(m.s);
        if (m.s === "live") this.becameLive();
        return;
      case "state":
        this.setState(m.s);
        if (m.s === "live") this.becameLive();
        return;
      case "frame":
        this.emit("frame", m.f);
        return;
      case "change":
        this.followChange(m.f);
        return;
      case "synced":
        if (typeof m.pos === "number" && this.seq.pos === null) this.seq.at(m.pos);
        if (m.counts) this.inbox.setCounts(m.counts, false);
        return;
      case "reset":
        this.stats.resets++;
        this.seq.forget();
        if (typeof m.pos === "number") this.seq.at(m.pos);
        this.inbox.clear();
        this.inbox.load().catch((e) => this.emit("error", e));
        this.emit("reset", { reason: m.reason ?? "unknown", ...typeof m.pos === "number" ? { pos: m.pos } : {} });
        return;
      case "catchup":
        if (m.to !== me) return;
        this.repairing = false;
        if (m.reload) {
          this.stats.resets++;
          this.seq.forget();
          this.inbox.clear();
          if (typeof m.pos === "number") this.seq.at(m.pos);
          this.inbox.load().catch((e) => this.emit("error", e));
          return;
        }
        for (const f of m.frames ?? []) this.followChange(f);
        return;
    }
  }
  /** since answers a follower's repair: the changes after its cursor from the ring, or reload when they are gone. */
  since(pos, lastId) {
    if (typeof pos === "number") {
      const first = this.ring.find((f) => typeof f.pos === "number")?.pos;
      if (first !== void 0 && first <= pos + 1) return { frames: this.ring.filter((f) => typeof f.pos === "number" && f.pos > pos) };
    } else if (typeof lastId === "string") {
      const i = this.ring.findIndex((f) => f.topic === TOPIC.created && idOf(f.data) === lastId);
      if (i >= 0) return { frames: this.ring.slice(i + 1) };
      if (lastId === this.seq.lastId) return { frames: [] };
    } else if (this.seq.lastId === null && this.seq.pos === null) {
      return { frames: this.ring.slice() };
    }
    return { reload: true, pos: this.seq.pos };
  }
  followChange(f) {
    const v = this.seq.judge(f);
    if (v === "repeat") {
      this.stats.repeats++;
      return;
    }
    if (v === "gap") {
      this.stats.gaps++;
      if (!this.repairing) {
        this.repairing = true;
        this.shared?.post({ t: "since", from: this.shared.id, pos: this.seq.pos });
      }
      return;
    }
    this.applyChange(f);
  }
  // --- the page: frozen, hidden, asleep, offline ---
  watchPage() {
    const doc = typeof document !== "undefined" ? document : null;
    const win = typeof window !== "undefined" ? window : null;
    if (!doc || !win) return;
    const on = (target, ev, fn) => {
      target.addEventListener(ev, fn);
      this.cleanup.push(() => target.removeEventListener(ev, fn));
    };
    on(doc, "freeze", () => {
      this.shared?.release();
      this.conn?.suspend();
    });
    on(doc, "resume", () => this.wake());
    on(doc, "visibilitychange", () => {
      if (doc.visibilityState === "visible") this.wake();
    });
    on(win, "online", () => this.wake());
    on(win, "pageshow", () => this.wake());
    let last = Date.now();
    const t = setInterval(() => {
      const now = Date.now();
      if (now - last > 15e3) this.wake();
      last = now;
    }, 5e3);
    this.cleanup.push(() => clearInterval(t));
  }
  /** wake: after a freeze, a sleep or a hidden spell, get back to live and catch up. */
  wake() {
    if (!this.started) return;
    if (this.shared) {
      this.shared.resume();
      if (this.roleValue === "follower") {
        this.shared.post({ t: "hello", from: this.shared.id });
        return;
      }
    }
    if (this.conn) {
      this.conn.resume();
      this.conn.wake();
    }
  }
};
function missingWebSocket() {
  throw new TypeError("createClient: no WebSocket here: pass one in options.WebSocket (Node 20: the ws package)");
}
function createClient(options) {
  return new Client(options);
}
export {
  Client,
  SignalError,
  TOPIC,
  createClient
};
