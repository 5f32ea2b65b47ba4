// createClient: the whole client side of Signal's protocol behind one
// object. See README.md for the behaviour and docs/sync-stream.md for the
// rules it follows.
import type { BackoffOptions } from "./backoff.js";
import { Connection, type WebSocketConstructor } from "./connection.js";
import { Emitter } from "./emitter.js";
import { Inbox } from "./inbox.js";
import { Rest, type FetchLike } from "./rest.js";
import { share, type Role, type Shared } from "./share.js";
import { idOf, isChange, Sequencer } from "./stream.js";
import { TokenSource, type TokenProvider } from "./token.js";
import {
  SignalError,
  TOPIC,
  type Change,
  type ConnectionState,
  type Counts,
  type Frame,
  type Notification,
  type WelcomeData,
} from "./types.js";

export interface ClientOptions {
  /** the server's base URL, http(s)://…; the WebSocket and REST URLs are derived from it */
  url: string;
  /** a token (JWT), or an async function that returns a fresh one: asked again before exp, after 4001 and after a REST 401 */
  token: TokenProvider;
  /** a WebSocket constructor (Node 20: the ws package); default the global WebSocket */
  WebSocket?: WebSocketConstructor;
  /** default the global fetch */
  fetch?: FetchLike;
  /** share one socket between the tabs of this origin (default: true in a browser page) */
  share?: boolean;
  /** load the inbox's first page when connected (default true) */
  autoload?: boolean;
  /** inbox page size, 1–100 (default 20) */
  pageSize?: number;
  /** reconnect delays in ms: full jitter up to min·2^attempt, capped at max (default 500, 30,000) */
  backoff?: BackoffOptions;
  /** ms of silence before a ping checks the socket (default 30,000; 0: never) */
  pingInterval?: number;
  /** ms a ping may take before the socket is taken for dead (default 10,000) */
  pongTimeout?: number;
}

export interface ClientEvents {
  /** a new notification (once, whatever repeats the server sends) */
  notification: Notification;
  /** every change applied to the inbox, in stream order */
  change: Change;
  /** the badge changed */
  counts: Counts;
  state: ConnectionState;
  error: SignalError;
  /** every frame received and not a repeat (the console's log) */
  frame: Frame;
  /** a change received again, dropped */
  repeat: Frame;
  /** the server could not resume the stream: the inbox was loaded again */
  reset: { reason: string; pos?: number };
  /** this tab holds the socket (leader), follows another tab's, or holds its own (standalone) */
  role: Role | "standalone";
}

/** Counters, for tests and monitoring. */
export interface ClientStats {
  /** sockets opened after the first */
  reconnects: number;
  /** closes, by code */
  closes: Record<string, number>;
  /** changes dropped as repeats */
  repeats: number;
  /** gaps found (and repaired) */
  gaps: number;
  /** resets (cursor not resumable) */
  resets: number;
  /** tokens handed to the open socket */
  refreshes: number;
  /** changes applied */
  applied: number;
}

const CHANNEL_PREFIX = "@signal-notify/client";
const RING = 1000; // changes the leader keeps for its followers' repairs

export class Client extends Emitter<ClientEvents> {
  readonly inbox: Inbox;
  readonly stats: ClientStats = { reconnects: 0, closes: {}, repeats: 0, gaps: 0, resets: 0, refreshes: 0, applied: 0 };
  private readonly base: URL;
  private readonly tokens: TokenSource;
  private readonly rest: Rest;
  private readonly seq = new Sequencer();
  private conn: Connection | null = null;
  private shared: Shared | null = null;
  private started = false;
  private stateValue: ConnectionState = "offline";
  private roleValue: Role | "standalone" = "standalone";
  private ownRoom: string | null = null;
  private clientIdValue: string | null = null;
  private roomsValue = new Set<string>();
  private repairing = false;
  private sockets = 0;
  private loadedOnce = false;
  private ring: Frame[] = [];
  private followed = false; // a follower that had the leader's status once
  private wanted = new Set<string>(); // rooms joined by hand, joined again after a reconnect
  private cleanup: (() => void)[] = [];
  private readonly fetcher: FetchLike;

  constructor(private readonly o: ClientOptions) {
    super();
    if (!o || typeof o.url !== "string") throw new TypeError("createClient: url is required");
    if (typeof o.token !== "string" && typeof o.token !== "function") throw new TypeError("createClient: token must be a string or a function");
    const base = new URL(o.url);
    if (base.protocol !== "http:" && base.protocol !== "https:") throw new TypeError("createClient: url must be an http or https URL");
    if (!base.pathname.endsWith("/")) base.pathname += "/";
    base.search = "";
    base.hash = "";
    this.base = base;
    const f = o.fetch ?? (globalThis.fetch ? globalThis.fetch.bind(globalThis) : undefined);
    if (!f) throw new TypeError("createClient: no fetch: pass one in options.fetch");
    this.fetcher = f;
    this.tokens = new TokenSource(o.token);
    this.rest = new Rest(this.base, this.tokens, this.fetcher);
    this.inbox = new Inbox(this.rest, { error: (e) => this.emit("error", e), counts: (c) => this.emit("counts", c) }, o.pageSize ?? 20);
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  /** leader, follower, or standalone (a socket of its own) */
  get role(): Role | "standalone" {
    return this.roleValue;
  }

  /** the server's id of this connection (the leader's, in a follower) */
  get clientId(): string | null {
    return this.clientIdValue;
  }

  /** rooms the connection is in (the leader's own connection only) */
  get rooms(): ReadonlySet<string> {
    return this.roomsValue;
  }

  /** the resume point: the position of the last change applied (or the last notification id, on servers without positions) */
  get cursor(): string | null {
    return this.seq.since();
  }

  /** connect starts the client: it connects and stays connected until close(). */
  async connect(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.setState("connecting");
    let sub: string | undefined;
    try {
      sub = (await this.tokens.get()).claims.sub;
    } catch (err) {
      this.emit("error", new SignalError("token", "the token provider failed: " + ((err as Error)?.message ?? err), { cause: err }));
    }
    if (!this.started) return;
    if (sub) this.ownRoom = "signal/notification/" + sub;
    this.watchPage();
    const wantShare = this.o.share ?? (typeof document !== "undefined" && typeof window !== "undefined");
    if (wantShare && sub) {
      this.shared = share(`${CHANNEL_PREFIX} ${this.base.href} ${sub}`, {
        role: (r) => this.onRole(r),
        message: (m) => this.onShared(m),
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
  close(): void {
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
  join(room: string, since?: string | number): boolean {
    if (room !== this.ownRoom) this.wanted.add(room);
    return this.sendJoin(room, since);
  }

  leave(room: string): boolean {
    this.wanted.delete(room);
    return this.conn?.send({ action: "leave", room }) ?? false;
  }

  private sendJoin(room: string, since?: string | number | null): boolean {
    const msg: Record<string, unknown> = { action: "join", room };
    if (since !== undefined && since !== null) msg["since"] = String(since);
    return this.conn?.send(msg) ?? false;
  }

  /** refreshToken asks the token provider for a new token now and hands it to the open socket. */
  refreshToken(): Promise<void> {
    return this.conn ? this.conn.refresh() : this.tokens.get(true).then(() => undefined);
  }

  // --- the socket (leader or standalone) ---

  private lead(): void {
    if (this.conn || !this.started) return;
    const conn = new Connection({
      base: this.base,
      tokens: this.tokens,
      WebSocket: this.o.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? missingWebSocket(),
      backoff: { min: this.o.backoff?.min ?? 500, max: this.o.backoff?.max ?? 30_000 },
      pingInterval: this.o.pingInterval ?? 30_000,
      pongTimeout: this.o.pongTimeout ?? 10_000,
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
          if (code !== 1000 && code !== 1001 && code !== 1012 && code !== 4000) {
            this.emit("error", new SignalError("closed", `the server closed the connection (${code})`, { closeCode: code }));
          }
        },
        error: (e) => this.emit("error", e),
        tokenRefused: () => this.probeToken(),
      },
    });
    this.conn = conn;
    conn.start();
  }

  private async probeToken(): Promise<boolean> {
    const held = this.tokens.held;
    if (!held) return false;
    try {
      const r = await this.fetcher(new URL("notifications/counts", this.base).href, {
        headers: { Authorization: "Bearer " + held.token },
        cache: "no-store",
        credentials: "omit",
      });
      await r.body?.cancel();
      return r.status === 401;
    } catch {
      return false;
    }
  }

  private onWelcome(d: WelcomeData): void {
    this.clientIdValue = d?.clientId ?? null;
    this.roomsValue = new Set(d?.rooms ?? []);
    if (!this.ownRoom) this.ownRoom = (d?.rooms ?? []).find((r) => r.startsWith("signal/notification/")) ?? null;
    for (const room of this.wanted) if (!this.roomsValue.has(room)) this.sendJoin(room);
    // A server with positions says live with synced; one without is live now.
    if (!this.seq.positioned) {
      // It replays created frames only: state changes made while this
      // client was away come from a reload.
      if (this.loadedOnce) this.inbox.load().catch((e: SignalError) => this.emit("error", e));
      this.becameLive();
    }
  }

  private becameLive(): void {
    this.setState("live");
    if (!this.loadedOnce && (this.o.autoload ?? true)) {
      this.loadedOnce = true;
      this.inbox.load().catch((e: SignalError) => this.emit("error", e));
    }
  }

  private onFrame(f: Frame): void {
    const d = f.data as Record<string, unknown> | null;
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

  private onSynced(f: Frame): void {
    const d = f.data as { pos?: number; counts?: Counts };
    this.seq.catchingUp = false;
    this.repairing = false;
    if (typeof d.pos === "number") {
      if (this.seq.pos === null || this.seq.pos > d.pos) {
        // A first start (or a cursor beyond what the server has: it said so with reset, not here).
        this.seq.at(Math.max(d.pos, this.seq.pos ?? d.pos));
      } else if (this.seq.pos < d.pos) {
        // Everything up to d.pos was sent, and something is missing: repair.
        this.gap();
      }
      this.seq.positioned = true;
    }
    if (d.counts) this.inbox.setCounts({ ...d.counts, ...(typeof d.pos === "number" ? { pos: d.pos } : {}) }, false);
    this.relay({ t: "synced", pos: this.seq.pos, counts: d.counts });
    this.becameLive();
  }

  private onReset(f: Frame): void {
    const d = f.data as { pos?: number; counts?: Counts; reason?: string };
    this.stats.resets++;
    this.seq.forget();
    if (typeof d.pos === "number") this.seq.at(d.pos);
    this.repairing = false;
    this.ring = [];
    this.inbox.clear();
    if (d.counts) this.inbox.setCounts(d.counts, false);
    this.loadedOnce = true;
    this.inbox.load().catch((e: SignalError) => this.emit("error", e));
    const ev: { reason: string; pos?: number } = { reason: d.reason ?? "unknown" };
    if (typeof d.pos === "number") ev.pos = d.pos;
    this.emit("reset", ev);
    this.relay({ t: "reset", pos: d.pos, reason: ev.reason });
    this.setState("live");
  }

  private onErrorFrame(f: Frame, own: boolean): void {
    const d = f.data as { code?: string; message?: string; room?: string } | null;
    const code = d?.code ?? "error";
    const extra: { room?: string } = {};
    if (d?.room !== undefined) extra.room = d.room;
    this.emit("error", new SignalError(code, d?.message ?? code, extra));
    // A room refused (forbidden, too many rooms…) is not joined again.
    if (d?.room && d.room !== this.ownRoom && code !== "rate_limited") this.wanted.delete(d.room);
    if (!own) return;
    if (code === "replay_truncated" || code === "unknown_since" || code === "invalid_since") {
      // A server without positions could not resume: what it left out comes from REST.
      this.stats.resets++;
      if (code !== "replay_truncated") this.seq.forget();
      this.inbox.load().catch((e: SignalError) => this.emit("error", e));
      this.emit("reset", { reason: code });
      this.relay({ t: "reset", reason: code });
    }
  }

  private onChange(f: Frame): void {
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
  private gap(): void {
    this.stats.gaps++;
    if (this.repairing || !this.ownRoom) return;
    this.repairing = true;
    const since = this.seq.since();
    if (!this.sendJoin(this.ownRoom, since)) this.conn?.reconnect();
  }

  private applyChange(f: Frame): void {
    this.seq.applied(f);
    this.stats.applied++;
    this.inbox.positioned = this.seq.positioned;
    this.inbox.apply(f);
    const kind = f.topic === TOPIC.created ? "created" : f.topic === TOPIC.updated ? "updated" : "other";
    const change: Change = { topic: f.topic, kind, data: f.data };
    if (typeof f.pos === "number") change.pos = f.pos;
    if (f.counts) change.counts = f.counts;
    this.emit("frame", f);
    this.emit("change", change);
    if (kind === "created") {
      const n = { ...(f.data as Notification) };
      if (typeof f.pos === "number") n.pos = f.pos;
      this.emit("notification", n);
    }
  }

  private setState(s: ConnectionState): void {
    if (s === this.stateValue) return;
    this.stateValue = s;
    this.emit("state", s);
    if (this.roleValue === "leader") this.relay({ t: "state", s });
  }

  // --- sharing between tabs ---

  private relay(msg: Record<string, unknown>): void {
    if (this.shared && this.roleValue === "leader") this.shared.post(msg);
  }

  private onRole(r: Role): void {
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

  private onShared(m: any): void {
    if (!m || typeof m !== "object" || !this.started) return;
    if (this.roleValue === "leader") {
      // What the followers ask.
      if (m.t === "hello") {
        this.shared!.post({ t: "status", to: m.from, s: this.stateValue, pos: this.seq.pos, lastId: this.seq.lastId, positioned: this.seq.positioned, counts: this.inbox.counts, clientId: this.clientIdValue });
      } else if (m.t === "since") {
        this.shared!.post({ t: "catchup", to: m.from, ...this.since(m.pos, m.lastId) });
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
          else if (m.pos > this.seq.pos) this.shared!.post({ t: "since", from: me, pos: this.seq.pos });
        } else if (!this.followed && this.seq.lastId === null && typeof m.lastId === "string") {
          this.seq.lastId = m.lastId; // the point this tab follows from
        } else if (this.followed && m.lastId !== this.seq.lastId) {
          // Without positions: ask for what came after the last notification here.
          this.shared!.post({ t: "since", from: me, lastId: this.seq.lastId });
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
        this.inbox.load().catch((e: SignalError) => this.emit("error", e));
        this.emit("reset", { reason: m.reason ?? "unknown", ...(typeof m.pos === "number" ? { pos: m.pos } : {}) });
        return;
      case "catchup":
        if (m.to !== me) return;
        this.repairing = false;
        if (m.reload) {
          this.stats.resets++;
          this.seq.forget();
          this.inbox.clear();
          if (typeof m.pos === "number") this.seq.at(m.pos);
          this.inbox.load().catch((e: SignalError) => this.emit("error", e));
          return;
        }
        for (const f of m.frames ?? []) this.followChange(f);
        return;
    }
  }

  /** since answers a follower's repair: the changes after its cursor from the ring, or reload when they are gone. */
  private since(pos: unknown, lastId: unknown): { frames: Frame[] } | { reload: true; pos: number | null } {
    if (typeof pos === "number") {
      const first = this.ring.find((f) => typeof f.pos === "number")?.pos;
      if (first !== undefined && first <= pos + 1) return { frames: this.ring.filter((f) => typeof f.pos === "number" && f.pos > pos) };
    } else if (typeof lastId === "string") {
      // Without positions: what came after the follower's last notification.
      const i = this.ring.findIndex((f) => f.topic === TOPIC.created && idOf(f.data) === lastId);
      if (i >= 0) return { frames: this.ring.slice(i + 1) };
      if (lastId === this.seq.lastId) return { frames: [] };
    } else if (this.seq.lastId === null && this.seq.pos === null) {
      return { frames: this.ring.slice() };
    }
    return { reload: true, pos: this.seq.pos };
  }

  private followChange(f: Frame): void {
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

  private watchPage(): void {
    const doc = typeof document !== "undefined" ? document : null;
    const win = typeof window !== "undefined" ? window : null;
    if (!doc || !win) return;
    const on = (target: EventTarget, ev: string, fn: () => void) => {
      target.addEventListener(ev, fn);
      this.cleanup.push(() => target.removeEventListener(ev, fn));
    };
    // A frozen page runs nothing: close the socket (and hand the leadership
    // over); on resume, catch up from the cursor.
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
    // A machine that slept: timers stop, then fire late all at once.
    let last = Date.now();
    const t = setInterval(() => {
      const now = Date.now();
      if (now - last > 15_000) this.wake();
      last = now;
    }, 5000);
    this.cleanup.push(() => clearInterval(t));
  }

  /** wake: after a freeze, a sleep or a hidden spell, get back to live and catch up. */
  private wake(): void {
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
}

function missingWebSocket(): never {
  throw new TypeError("createClient: no WebSocket here: pass one in options.WebSocket (Node 20: the ws package)");
}

/** createClient makes a client; call connect() to start it. */
export function createClient(options: ClientOptions): Client {
  return new Client(options);
}
