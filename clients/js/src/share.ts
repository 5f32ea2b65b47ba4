// One socket per browser: the tabs of one origin that connect to the same
// server as the same recipient elect a leader, which alone holds the
// WebSocket and passes what it receives to the others over a
// BroadcastChannel. Web Locks elect it where they exist (the lock passes to
// the next tab when the leader's closes or crashes); elsewhere the tabs
// elect over the channel itself with heartbeats. Without BroadcastChannel
// every tab keeps its own socket.

export type Role = "leader" | "follower";

export interface Shared {
  readonly id: string;
  readonly role: Role;
  post(msg: unknown): void;
  /** give leadership up (a frozen page) until resume */
  release(): void;
  resume(): void;
  close(): void;
}

export interface ShareHooks {
  role(r: Role): void;
  message(msg: any): void;
}

interface LockManagerLike {
  request(name: string, opts: { signal?: AbortSignal }, cb: () => Promise<void>): Promise<void>;
}

const HEARTBEAT = 1000; // ms between the leader's heartbeats (channel election)
const SILENCE = 3000; // ms without one before a follower claims

export function share(name: string, hooks: ShareHooks): Shared | null {
  if (typeof BroadcastChannel === "undefined") return null;
  const locks = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks;
  const id = Math.random().toString(36).slice(2) + Date.now().toString(36);
  const channel = new BroadcastChannel(name);
  let role: Role = "follower";
  let closed = false;
  let released = false;
  const setRole = (r: Role) => {
    if (r === role) return;
    role = r;
    hooks.role(r);
  };

  // --- Web Locks ---
  let unlock: (() => void) | null = null;
  let abort: AbortController | null = null;
  const requestLock = () => {
    if (!locks) return;
    abort = new AbortController();
    locks
      .request(name, { signal: abort.signal }, () => {
        if (closed || released) return Promise.resolve();
        setRole("leader");
        return new Promise<void>((resolve) => {
          unlock = resolve;
        });
      })
      .catch(() => {
        // aborted: released or closed
      });
  };
  const dropLock = () => {
    abort?.abort();
    abort = null;
    unlock?.();
    unlock = null;
    setRole("follower");
  };

  // --- channel election, without Web Locks ---
  let lastBeat = Date.now();
  let leaderId: string | null = null;
  let timer: ReturnType<typeof setInterval> | undefined;
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

  channel.onmessage = (ev: MessageEvent) => {
    const msg = ev.data as { t?: string; from?: string } | null;
    if (!msg || typeof msg !== "object") return;
    if (!locks && msg.t === "beat" && typeof msg.from === "string") {
      // Two leaders (a split on start): the smaller id keeps it.
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
      lastBeat = Date.now() - SILENCE + HEARTBEAT + Math.random() * HEARTBEAT; // a new tab listens about a beat first
      timer = setInterval(tick, HEARTBEAT / 2);
    }
  };
  start();

  return {
    id,
    get role() {
      return role;
    },
    post(msg: unknown) {
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
    },
  };
}
