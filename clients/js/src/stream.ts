// The recipient's stream, frame by frame: which changes to apply, which are
// repeats, and when something is missing (docs/sync-stream.md, "What a
// client does"). Pure bookkeeping, no I/O: the connection acts on its answers.
import { TOPIC, type Frame } from "./types.js";

export type Verdict =
  /** apply it: the next change (or, without positions, a new one) */
  | "apply"
  /** already applied: drop it */
  | "repeat"
  /** a change is missing before this one: repair with join since the cursor */
  | "gap";

/** A set that forgets its oldest entries past a limit (ids of a legacy server). */
export class RecentSet {
  private set = new Set<string>();
  constructor(private readonly limit: number) {}
  has(v: string): boolean {
    return this.set.has(v);
  }
  add(v: string): void {
    if (this.set.has(v)) return;
    this.set.add(v);
    if (this.set.size > this.limit) {
      const oldest = this.set.values().next().value;
      if (oldest !== undefined) this.set.delete(oldest);
    }
  }
  clear(): void {
    this.set.clear();
  }
}

/** isChange: a frame of the recipient's own stream. */
export function isChange(f: Frame, room: string | null): boolean {
  if (room === null || f.room !== room) return false;
  if (typeof f.pos === "number") return true;
  return f.topic === TOPIC.created || f.topic === TOPIC.updated;
}

export class Sequencer {
  /** position of the last change applied; null before the first synced, reset or positioned change */
  pos: number | null = null;
  /** id of the last created change applied (the resume point of servers without positions) */
  lastId: string | null = null;
  /** the server numbers its changes (it sent pos or synced) */
  positioned = false;
  /** a catch-up is running (joined with since … synced): its frames come in order, gaps included */
  catchingUp = false;
  private readonly ids = new RecentSet(5000);

  /** since is the resume point for ?since= or join: the position, else the last id. */
  since(): string | null {
    if (this.pos !== null) return String(this.pos);
    return this.lastId;
  }

  judge(f: Frame): Verdict {
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
  applied(f: Frame): void {
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
  at(pos: number): void {
    this.positioned = true;
    this.pos = pos;
  }

  forget(): void {
    this.pos = null;
    this.lastId = null;
    this.catchingUp = false;
    this.ids.clear();
  }
}

export function idOf(data: unknown): string | null {
  const id = (data as { id?: unknown } | null)?.id;
  return typeof id === "string" ? id : null;
}
