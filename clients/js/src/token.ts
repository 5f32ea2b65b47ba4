// Tokens: a fixed string or an async provider. The provider is asked again
// before the token's exp (refresh on the open connection), after a 4001
// close, and after a REST 401; concurrent asks share one call.

export type TokenProvider = string | (() => string | Promise<string>);

export interface Claims {
  sub?: string;
  exp?: number;
  iat?: number;
}

/** decodeClaims reads a JWT's payload without checking it (the server does). */
export function decodeClaims(token: string): Claims {
  const part = token.split(".")[1];
  if (!part) return {};
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
    const bin = atob(padded);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
    return claims && typeof claims === "object" ? (claims as Claims) : {};
  } catch {
    return {};
  }
}

export interface HeldToken {
  token: string;
  claims: Claims;
  /** local time (ms) the token was obtained */
  at: number;
}

export class TokenSource {
  private current: HeldToken | null = null;
  private pending: Promise<HeldToken> | null = null;

  constructor(private readonly provider: TokenProvider, private readonly now: () => number = Date.now) {}

  /** refreshable: a provider can give a new token; a fixed string cannot. */
  get refreshable(): boolean {
    return typeof this.provider === "function";
  }

  get held(): HeldToken | null {
    return this.current;
  }

  /** get answers the token held, or asks the provider when there is none (or force). */
  get(force = false): Promise<HeldToken> {
    if (this.current && !force) return Promise.resolve(this.current);
    if (this.pending) return this.pending;
    const p = (async () => {
      const raw = typeof this.provider === "function" ? await this.provider() : this.provider;
      if (typeof raw !== "string" || raw === "") throw new Error("the token provider gave no token");
      // The same token again keeps the time it first came.
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
  refreshIn(held: HeldToken | null = this.current): number | null {
    if (!held || typeof held.claims.exp !== "number") return null;
    const { exp, iat } = held.claims;
    const expiresAt = typeof iat === "number" && iat <= exp ? held.at + (exp - iat) * 1000 : exp * 1000;
    const lifetime = typeof iat === "number" && iat <= exp ? (exp - iat) * 1000 : expiresAt - held.at;
    const lead = Math.max(2000, Math.min(60_000, lifetime / 4));
    return Math.max(0, expiresAt - lead - this.now());
  }

  /** expired: the held token's exp has passed by the local clock. */
  expired(): boolean {
    const exp = this.current?.claims.exp;
    return typeof exp === "number" && exp * 1000 <= this.now();
  }
}
