// One logical connection to the server: it opens WebSockets one after the
// other, for as long as it runs. It resumes each with ?since= (the hooks give
// the point), reconnects after every close with full-jitter backoff (longer
// after 1008, a new token first after 4001), refreshes the token on the open
// socket before exp, and checks the socket is alive when the page wakes up,
// comes back online or stays silent too long.
import { closeDelay, type BackoffOptions } from "./backoff.js";
import { SignalError, TOPIC, type Frame, type WelcomeData } from "./types.js";
import type { TokenSource } from "./token.js";

/** The part of the WHATWG WebSocket the client uses (browsers', Node 22's, or ws). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: any }) => void) | null;
  onclose: ((ev: { code: number; reason: string; wasClean?: boolean }) => void) | null;
  onerror: ((ev: any) => void) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ConnectionHooks {
  /** the resume point for ?since=, or null */
  since(): string | null;
  welcome(data: WelcomeData): void;
  frame(f: Frame): void;
  /** a socket is being opened (true) or none is open (false) */
  connecting(on: boolean): void;
  closed(code: number, reason: string): void;
  error(e: SignalError): void;
  /** the upgrade failed before the socket opened: probe the token (REST); true when it was refused */
  tokenRefused(): Promise<boolean>;
}

export interface ConnectionOptions {
  base: URL;
  tokens: TokenSource;
  WebSocket: WebSocketConstructor;
  backoff: Required<BackoffOptions>;
  /** ms of silence after which a ping checks the socket (0: never) */
  pingInterval: number;
  /** ms a ping may take */
  pongTimeout: number;
  hooks: ConnectionHooks;
  random?: () => number;
}

const OPEN = 1;

export class Connection {
  private socket: WebSocketLike | null = null;
  private running = false;
  private suspended = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setTimeout> | undefined;
  private pongTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshing: string | null = null; // the token sent with refresh, until refreshed
  private using: string | null = null; // the token the open socket runs on
  private liveSince = 0;
  private opening = false;
  /** reconnects since the stream was last live for long */
  get attempts(): number {
    return this.attempt;
  }

  constructor(private readonly o: ConnectionOptions) {}

  get open(): boolean {
    return this.socket !== null && this.socket.readyState === OPEN;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.suspended = false;
    void this.openSocket();
  }

  /** stop closes the socket and does not reconnect. */
  stop(): void {
    this.running = false;
    this.drop(1000, "client closed");
  }

  /** suspend closes the socket until resume (a frozen page, a lost leadership). */
  suspend(): void {
    if (!this.running || this.suspended) return;
    this.suspended = true;
    this.drop(1000, "suspended");
  }

  resume(): void {
    if (!this.running || !this.suspended) return;
    this.suspended = false;
    this.attempt = 0;
    void this.openSocket();
  }

  /** send an action; false when no socket is open (it is not queued). */
  send(msg: Record<string, unknown>): boolean {
    if (!this.open) return false;
    this.socket!.send(JSON.stringify(msg));
    return true;
  }

  /** wake: reconnect now when waiting, or check the open socket with a ping. */
  wake(): void {
    if (!this.running || this.suspended) return;
    if (this.socket === null && !this.opening) {
      clearTimeout(this.retryTimer);
      void this.openSocket();
      return;
    }
    this.ping();
  }

  /** ping sends a ping and closes the socket when nothing comes back in time. */
  ping(): void {
    if (!this.open || this.pongTimer !== undefined) return;
    const s = this.socket!;
    this.send({ action: "ping" });
    this.pongTimer = setTimeout(() => {
      this.pongTimer = undefined;
      if (this.socket === s) {
        // Nothing came back: the socket is dead (a sleep, a lost network).
        this.o.hooks.error(new SignalError("timeout", "the server did not answer a ping: reconnecting"));
        this.lose(s, 4000, "no answer to ping");
      }
    }, this.o.pongTimeout);
  }

  /** reconnect closes the socket and opens another at once (a gap to repair by reconnecting, a new token). */
  reconnect(): void {
    if (!this.running || this.suspended) return;
    if (this.socket) this.lose(this.socket, 4000, "reconnect");
  }

  private drop(code: number, reason: string): void {
    this.clearTimers();
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onopen = s.onmessage = s.onclose = null;
      s.onerror = () => {}; // ws reports closing a socket still connecting as an error

      try {
        s.close(code, reason);
      } catch {
        // already closing
      }
    }
    this.o.hooks.connecting(false);
  }

  /** lose closes s as if the server had, and reconnects as after a close. */
  private lose(s: WebSocketLike, code: number, reason: string): void {
    s.onclose = null;
    s.onerror = () => {};
    try {
      s.close(code === 4000 ? 4000 : 1000, reason);
    } catch {
      // already closing
    }
    this.closed(s, code, reason, true);
  }

  private clearTimers(): void {
    clearTimeout(this.retryTimer);
    clearTimeout(this.refreshTimer);
    clearTimeout(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.retryTimer = this.refreshTimer = this.pingTimer = this.pongTimer = undefined;
    this.refreshing = null;
  }

  private async openSocket(): Promise<void> {
    if (!this.running || this.suspended || this.socket || this.opening) return;
    this.opening = true;
    this.o.hooks.connecting(true);
    let token: string;
    try {
      const t = this.o.tokens;
      token = (await t.get(t.refreshable && (t.expired() || (t.refreshIn() ?? 1) === 0))).token;
    } catch (err) {
      this.opening = false;
      this.o.hooks.error(new SignalError("token", "the token provider failed: " + ((err as Error)?.message ?? err), { cause: err }));
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
    let s: WebSocketLike;
    try {
      s = new this.o.WebSocket(u.href);
    } catch (err) {
      this.o.hooks.error(new SignalError("network", "cannot open a WebSocket: " + ((err as Error)?.message ?? err), { cause: err }));
      this.retry(1006);
      return;
    }
    this.socket = s;
    let opened = false;
    s.onopen = () => {
      opened = true;
    };
    s.onerror = () => {
      // The close that follows says what to do.
    };
    s.onmessage = (ev) => {
      if (this.socket !== s) return;
      clearTimeout(this.pongTimer);
      this.pongTimer = undefined;
      this.armPing(s);
      let f: Frame;
      try {
        f = JSON.parse(typeof ev.data === "string" ? ev.data : String(ev.data)) as Frame;
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

  private onFrame(f: Frame): void {
    switch (f.topic) {
      case TOPIC.welcome:
        this.liveSince = Date.now();
        this.scheduleRefresh();
        this.o.hooks.welcome(f.data as WelcomeData);
        break;
      case TOPIC.refreshed:
        if (this.refreshing !== null) {
          this.using = this.refreshing;
          this.refreshing = null;
          this.scheduleRefresh();
        }
        break;
      case TOPIC.error: {
        const d = f.data as { code?: string; message?: string; room?: string } | null;
        if (this.refreshing !== null && !d?.room && (d?.code === "invalid_token" || d?.code === "forbidden")) {
          // The new token was refused; the connection still ends at the old exp.
          this.refreshing = null;
          this.o.hooks.error(new SignalError(d.code, "token refresh refused: " + (d.message ?? "")));
          this.refreshTimer = setTimeout(() => this.refresh(), 5000 + (this.o.random ?? Math.random)() * 5000);
        }
        break;
      }
    }
    this.o.hooks.frame(f);
  }

  private armPing(s: WebSocketLike): void {
    if (this.o.pingInterval <= 0) return;
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => {
      if (this.socket === s) this.ping();
    }, this.o.pingInterval);
  }

  private scheduleRefresh(): void {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    if (!this.o.tokens.refreshable) return;
    const wait = this.o.tokens.refreshIn();
    if (wait === null) return;
    this.refreshTimer = setTimeout(() => this.refresh(), Math.min(wait, 2_147_483_647));
  }

  /** refresh asks the provider for a new token and hands it to the open socket. */
  async refresh(): Promise<void> {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    const s = this.socket;
    let token: string;
    try {
      token = (await this.o.tokens.get(true)).token;
    } catch (err) {
      this.o.hooks.error(new SignalError("token", "the token provider failed: " + ((err as Error)?.message ?? err), { cause: err }));
      if (this.socket === s && s) this.refreshTimer = setTimeout(() => this.refresh(), 5000 + (this.o.random ?? Math.random)() * 5000);
      return;
    }
    if (this.socket !== s || !this.open) return; // the next socket opens with it
    if (token === this.using) {
      // The provider gave the token in use: nothing to send. Ask again a
      // little later (until exp; then the server closes with 4001).
      if (!this.o.tokens.expired()) this.refreshTimer = setTimeout(() => this.refresh(), 5000 + (this.o.random ?? Math.random)() * 5000);
      return;
    }
    this.refreshing = token;
    this.send({ action: "refresh", token });
  }

  private closed(s: WebSocketLike, code: number, reason: string, opened: boolean): void {
    if (this.socket !== s) return;
    this.socket = null;
    this.clearTimers();
    this.o.hooks.connecting(false);
    if (opened) this.o.hooks.closed(code, reason);
    if (!this.running) return;
    // A connection that stayed up a while starts the backoff again.
    if (opened && this.liveSince && Date.now() - this.liveSince > 10_000) this.attempt = 0;
    this.liveSince = 0;
    if (code === 4001) {
      // The token expired without a refresh: a reconnect needs a new one.
      if (!this.o.tokens.refreshable) {
        this.running = false;
        this.o.hooks.error(new SignalError("token", "the token expired (4001) and no token provider can give another", { closeCode: 4001 }));
        return;
      }
      this.o.tokens.get(true).then(
        () => this.retry(0, 1000),
        (err) => {
          this.o.hooks.error(new SignalError("token", "the token provider failed: " + ((err as Error)?.message ?? err), { cause: err }));
          this.retry(1006);
        },
      );
      return;
    }
    if (!opened) {
      // Refused before the upgrade: 401 (a bad or expired token), 429 or 503
      // (limits), or the server is down. A browser cannot tell which: ask.
      void this.o.hooks.tokenRefused().then((refused) => {
        if (!refused) return this.retry(1006);
        if (!this.o.tokens.refreshable) {
          this.running = false;
          this.o.hooks.error(new SignalError("unauthorized", "the server refused the token"));
          return;
        }
        this.o.tokens.get(true).then(
          () => this.retry(1006),
          () => this.retry(1006),
        );
      });
      return;
    }
    this.retry(code);
  }

  /** retry schedules the next socket after a close with code; window caps the delay. */
  private retry(code: number, window?: number): void {
    if (!this.running || this.suspended) return;
    const random = this.o.random ?? Math.random;
    const delay = window !== undefined ? Math.floor(random() * window) : closeDelay(code, this.attempt, this.o.backoff, random);
    this.attempt++;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.openSocket();
    }, delay);
  }
}
