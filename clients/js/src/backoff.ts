// Reconnect delays: full-jitter exponential backoff (a delay drawn uniformly
// between 0 and min(max, base·2^attempt)), so that clients cut off together
// do not come back together. The same technique as centrifuge-js, without
// its floor: the server already spreads its own closes over
// websocket.close_window, and a floor would only bunch them again.

export interface BackoffOptions {
  /** ms; the cap of the first attempt's window. Default 500. */
  min?: number;
  /** ms; no delay is longer. Default 30,000. */
  max?: number;
}

export function backoffDelay(attempt: number, opts: Required<BackoffOptions>, random: () => number = Math.random): number {
  const window = Math.min(opts.max, opts.min * 2 ** Math.min(attempt, 31));
  return Math.floor(random() * window);
}

/**
 * closeDelay is how long to wait before reconnecting after the server closed
 * with code (or the connection failed: 1006), at the given attempt (0 for the
 * first reconnect since the stream was last live).
 */
export function closeDelay(code: number, attempt: number, opts: Required<BackoffOptions>, random: () => number = Math.random): number {
  if (code === 1008) {
    // The client misbehaved (actions past the rate limit): back off longer,
    // starting at a quarter of the cap.
    const window = Math.max(opts.max / 4, Math.min(opts.max, opts.min * 2 ** Math.min(attempt + 4, 31)));
    return Math.floor(opts.max / 8 + random() * window);
  }
  return backoffDelay(attempt, opts, random);
}
