// The REST side: the inbox routes and preferences, with the token of the
// connection. A 401 asks the token provider for a new token and tries once
// more; every other error is a SignalError with the API's code and message.
import { SignalError, type Counts, type InboxItem, type Preferences } from "./types.js";
import type { TokenSource } from "./token.js";

export interface Page {
  items: InboxItem[];
  nextCursor: string | null;
  /** the stream's position when the page was read (sync-stream servers) */
  pos?: number;
}

export interface PageQuery {
  limit?: number;
  cursor?: string | null;
  unread?: boolean;
  unseen?: boolean;
  archived?: boolean;
  type?: string;
  organizerId?: string;
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export class Rest {
  constructor(
    private readonly base: URL,
    private readonly tokens: TokenSource,
    private readonly fetcher: FetchLike,
  ) {}

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const held = await this.tokens.get(attempt > 0);
      const headers: Record<string, string> = { Authorization: "Bearer " + held.token };
      const init: RequestInit = { method, headers, cache: "no-store", credentials: "omit" };
      if (body !== undefined) {
        headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      let resp: Response;
      try {
        resp = await this.fetcher(new URL(path, this.base).href, init);
      } catch (err) {
        throw new SignalError("network", `${method} ${path}: ${(err as Error)?.message ?? err}`, { cause: err });
      }
      if (resp.status === 401 && attempt === 0 && this.tokens.refreshable) {
        await resp.body?.cancel();
        continue;
      }
      if (resp.status === 204) return undefined as T;
      let json: unknown = null;
      try {
        json = await resp.json();
      } catch {
        // not JSON: reported below when the status is an error
      }
      if (!resp.ok) {
        const e = (json as { error?: { code?: string; message?: string } } | null)?.error;
        throw new SignalError(e?.code ?? "http", `${method} ${path}: ${e?.message ?? resp.status + " " + resp.statusText}`, { status: resp.status });
      }
      return json as T;
    }
  }

  page(q: PageQuery = {}): Promise<Page> {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) {
      if (v === undefined || v === null || v === false || v === "") continue;
      p.set(k, String(v));
    }
    const qs = p.toString();
    return this.call<Page>("GET", "notifications" + (qs ? "?" + qs : ""));
  }

  counts(): Promise<Counts> {
    return this.call<Counts>("GET", "notifications/counts");
  }

  item(id: string): Promise<InboxItem> {
    return this.call<InboxItem>("GET", "notifications/" + encodeURIComponent(id));
  }

  preferences(): Promise<Preferences> {
    return this.call<Preferences>("GET", "preferences");
  }

  setPreferences(p: Partial<Preferences>): Promise<Preferences> {
    return this.call<Preferences>("PUT", "preferences", p);
  }
}
