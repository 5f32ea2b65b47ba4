// The headless inbox store: the recipient's items (newest first, as many
// pages as were loaded) and counts, kept equal to the server's by applying
// the stream's changes, and the REST calls that change them. A UI renders
// getSnapshot() and calls the methods; subscribe() tells it when to render
// again (React's useSyncExternalStore takes both as they are).
import { TOPIC, SignalError, type Counts, type Frame, type InboxItem, type Preferences } from "./types.js";
import type { Page, PageQuery, Rest } from "./rest.js";
import { idOf } from "./stream.js";
import type { UpdatedData } from "./gen/frames.js";

export interface InboxSnapshot {
  /** the inbox (neither archived nor deleted), newest first: the pages loaded and what arrived since */
  readonly items: readonly InboxItem[];
  /** the badge; null until known */
  readonly counts: Counts | null;
  /** the first page has been loaded */
  readonly loaded: boolean;
  /** a load is running */
  readonly loading: boolean;
  /** older items remain on the server (loadMore) */
  readonly hasMore: boolean;
}

/** One id, several, or every notification of the recipient. */
export type Target = string | readonly string[] | "all";

const MAX_IDS = 1000; // ids per request (docs/protocol.md, Inbox)

export interface InboxHooks {
  /** errors of background work (a failed optimistic change, a reload) */
  error(err: SignalError): void;
  /** counts changed */
  counts(c: Counts): void;
}

export class Inbox {
  private byId = new Map<string, InboxItem>();
  private list: InboxItem[] = []; // oldest first: new items are appended (the snapshot reverses it)
  private archived = new Map<string, InboxItem>(); // items archived here, to bring back on unarchive
  private countsValue: Counts | null = null;
  private next: string | null = null;
  private loadedFlag = false;
  private loadingCount = 0;
  private snapshot: InboxSnapshot | null = null;
  private listeners = new Set<() => void>();
  private recording: Frame[] | null = null; // changes applied while a reload runs
  private countsTimer: ReturnType<typeof setTimeout> | undefined;
  private generation = 0;
  /** set by the client: the server sends counts with its changes */
  positioned = false;

  constructor(private readonly rest: Rest, private readonly hooks: InboxHooks, readonly pageSize = 20) {}

  // --- what a UI reads ---

  getSnapshot = (): InboxSnapshot => {
    if (!this.snapshot) {
      this.snapshot = Object.freeze({
        items: Object.freeze(this.list.slice().reverse()),
        counts: this.countsValue,
        loaded: this.loadedFlag,
        loading: this.loadingCount > 0,
        hasMore: this.next !== null,
      });
    }
    return this.snapshot;
  };

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  get items(): readonly InboxItem[] {
    return this.getSnapshot().items;
  }

  get counts(): Counts | null {
    return this.countsValue;
  }

  get hasMore(): boolean {
    return this.next !== null;
  }

  /** find an item loaded here */
  get(id: string): InboxItem | undefined {
    return this.byId.get(id);
  }

  // --- loading ---

  /**
   * load (re)loads the first page and the counts. Changes that arrive while
   * it runs are applied again on top of the page (changes are idempotent),
   * so nothing that happens meanwhile is lost.
   */
  async load(): Promise<void> {
    const gen = ++this.generation;
    const recorded: Frame[] = [];
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
  async loadMore(): Promise<void> {
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
  page(q: PageQuery = {}): Promise<Page> {
    return this.rest.page(q);
  }

  /** refreshCounts reads the counts from the server. */
  async refreshCounts(): Promise<Counts> {
    const c = await this.rest.counts();
    this.setCounts(c, true);
    this.changed();
    return c;
  }

  private addPage(page: Page): void {
    // A page is newest first and older than everything held: it goes in front.
    const older: InboxItem[] = [];
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
  apply(f: Frame): void {
    this.recording?.push(f);
    if (f.topic === TOPIC.created) {
      const id = idOf(f.data);
      if (id !== null && !this.byId.has(id) && !this.archived.has(id)) {
        const item: InboxItem = { ...(f.data as InboxItem), isSeen: false, isArchived: false };
        if (typeof f.pos === "number") item.pos = f.pos;
        this.insert(item);
      }
    } else if (f.topic === TOPIC.updated) {
      this.applyStates(f.data as UpdatedData, f.pos);
    } else if (f.topic === TOPIC.removed) {
      // Expired, retracted or revoked: gone, like a delete.
      const ids = (f.data as { ids?: string[] } | null)?.ids ?? [];
      this.applyStates({ ids, isDeleted: true }, f.pos);
    }
    if (f.counts) this.setCounts(typeof f.pos === "number" ? { ...f.counts, pos: f.pos } : f.counts, false);
    else if (!this.positioned && (f.topic === TOPIC.created || f.topic === TOPIC.updated)) this.countsSoon();
    this.changed();
  }

  /** setCounts takes counts from a frame (synced, reset) or the server. */
  setCounts(c: Counts, fromRest: boolean): void {
    const old = this.countsValue;
    // Counts older than those held (by position) are not taken: a REST
    // answer that raced a frame, or a frame recorded during a load and
    // applied again after the load's newer counts.
    if (old && typeof old.pos === "number" && typeof c.pos === "number" && c.pos < old.pos) return;
    const next: Counts = { unread: c.unread, unseen: c.unseen, total: c.total };
    if (typeof c.pos === "number") next.pos = c.pos;
    this.countsValue = next;
    if (!old || old.unread !== next.unread || old.unseen !== next.unseen || old.total !== next.total) {
      this.hooks.counts(next);
    }
    this.changed();
  }

  /** clear forgets everything (a reset, before load). */
  clear(): void {
    this.generation++;
    this.byId.clear();
    this.list = [];
    this.archived.clear();
    this.next = null;
    this.loadedFlag = false;
    this.changed();
  }

  private applyStates(d: UpdatedData, pos: number | undefined): void {
    if (!d || typeof d !== "object") return;
    let targets: InboxItem[];
    if (d.all) {
      // Every item that existed when the change ran: those before its position.
      targets = [...this.list, ...this.archived.values()].filter((it) => pos === undefined || it.pos === undefined || it.pos < pos);
    } else {
      targets = [];
      for (const id of d.ids ?? []) {
        const it = this.byId.get(id) ?? this.archived.get(id);
        if (it) targets.push(it);
        else if (d.isArchived === false && !d.isDeleted) this.fetchBack(id);
      }
    }
    // One pass over the list whatever the number of targets (read-all on a long inbox).
    const next = new Map<string, InboxItem | null>();
    const back: InboxItem[] = [];
    for (const old of targets) {
      const it: InboxItem = { ...old };
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
      const list: InboxItem[] = [];
      for (const it of this.list) {
        const n = next.has(it.id) ? next.get(it.id)! : it;
        if (n) list.push(n);
      }
      this.list = list;
    }
    for (const it of back) this.insert(it);
  }

  /** fetchBack brings an unarchived item this store never had. */
  private fetchBack(id: string): void {
    const gen = this.generation;
    this.rest.item(id).then(
      (it) => {
        if (gen !== this.generation || this.byId.has(id) || it.isArchived) return;
        // Only when it belongs in the window loaded: newer than the oldest item shown.
        const oldest = this.list[0];
        if (this.next !== null && oldest && compare(it, oldest) > 0) return;
        this.insert(it);
        this.changed();
      },
      (err: SignalError) => {
        if (err.status !== 404) this.hooks.error(err);
      },
    );
  }

  private insert(it: InboxItem): void {
    this.byId.set(it.id, it);
    // Oldest first: a new item is usually the last.
    let i = this.list.length;
    while (i > 0 && compare(this.list[i - 1]!, it) < 0) i--; // the one before is newer
    if (i === this.list.length) this.list.push(it);
    else this.list.splice(i, 0, it);
  }

  private countsSoon(): void {
    // A server without positions sends no counts: read them after a burst.
    if (this.countsTimer !== undefined) return;
    this.countsTimer = setTimeout(() => {
      this.countsTimer = undefined;
      this.refreshCounts().catch((err: SignalError) => this.hooks.error(err));
    }, 150);
  }

  private changed(): void {
    this.snapshot = null;
    for (const fn of [...this.listeners]) fn();
  }

  /** stop cancels background work (close). */
  stop(): void {
    clearTimeout(this.countsTimer);
    this.countsTimer = undefined;
  }

  // --- changes made here (REST); the stream confirms them on every device ---

  /** markSeen: one id, many or "all". */
  markSeen(target: Target): Promise<number> {
    return this.change("seen", target, { isSeen: true }, true);
  }

  /** markRead (and seen): one id, many or "all". */
  markRead(target: Target): Promise<number> {
    return this.change("read", target, { isRead: true, isSeen: true }, true);
  }

  markUnread(target: string | readonly string[]): Promise<number> {
    return this.change("unread", target, { isRead: false }, false);
  }

  archive(target: string | readonly string[]): Promise<number> {
    return this.change("archive", target, { isArchived: true }, false);
  }

  unarchive(target: string | readonly string[]): Promise<number> {
    return this.change("unarchive", target, { isArchived: false }, false);
  }

  /** delete: one id, many or "all" (cannot be undone). */
  delete(target: Target): Promise<number> {
    return this.change("delete", target, { isDeleted: true }, true);
  }

  preferences(): Promise<Preferences> {
    return this.rest.preferences();
  }

  setPreferences(p: Partial<Preferences>): Promise<Preferences> {
    return this.rest.setPreferences(p);
  }

  /**
   * change applies the states here at once (the UI does not wait), then asks
   * the server; the updated frame that follows sets the same states. When the
   * server refuses, the inbox is loaded again so it shows the truth.
   */
  private async change(verb: string, target: Target, states: Omit<UpdatedData, "ids">, allowAll: boolean): Promise<number> {
    if (target === "all") {
      if (!allowAll) throw new SignalError("bad_request", `${verb} takes ids, not "all"`);
    }
    const ids = target === "all" ? [] : typeof target === "string" ? [target] : [...target];
    if (target !== "all" && ids.length === 0) return 0;
    this.applyStates(target === "all" ? { ids: [], all: true, ...states } : { ids, ...states }, undefined);
    this.changed();
    try {
      if (target === "all") {
        const r = await this.rest.call<{ updated: number }>("POST", `notifications/${verb}`, { all: true });
        return r.updated;
      }
      if (ids.length === 1 && verb !== "seen") {
        // The one-id routes: POST /notifications/{id}/read …, DELETE /notifications/{id}.
        const path = "notifications/" + encodeURIComponent(ids[0]!);
        if (verb === "delete") {
          await this.rest.call("DELETE", path);
        } else {
          await this.rest.call("POST", path + "/" + verb);
        }
        return 1;
      }
      let updated = 0;
      for (let i = 0; i < ids.length; i += MAX_IDS) {
        const r = await this.rest.call<{ updated: number }>("POST", `notifications/${verb}`, { ids: ids.slice(i, i + MAX_IDS) });
        updated += r.updated;
      }
      return updated;
    } catch (err) {
      this.load().catch((e: SignalError) => this.hooks.error(e));
      throw err;
    }
  }
}

/** applyFields sets what an edit (PATCH /events) or a group's new event changed. */
function applyFields(it: InboxItem, d: UpdatedData): void {
  if (typeof d.content === "string") it.content = d.content;
  if (typeof d.actionUrl === "string") it.actionUrl = d.actionUrl === "" ? null : d.actionUrl;
  if (d.data && typeof d.data === "object") it.data = d.data;
  if (typeof d.count === "number") it.count = d.count;
  if (Array.isArray(d.actors)) it.actors = d.actors;
}

/** compare orders items newest first: by position when both have one, else by createdAt. */
function compare(a: InboxItem, b: InboxItem): number {
  if (typeof a.pos === "number" && typeof b.pos === "number") return b.pos - a.pos;
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}
