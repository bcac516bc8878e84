// Pure helpers for reconnecting and resuming: no sockets, no timers.

/** How long to wait between connection attempts. */
export interface BackoffOptions {
  /** the cap of the first retry's delay, ms (default 500) */
  initialMs?: number;
  /** the largest cap, ms (default 20,000) */
  maxMs?: number;
}

export const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 20_000 } as const;

/**
 * Exponential backoff with full jitter: a delay drawn uniformly from
 * [0, min(maxMs, initialMs * 2^attempt)], attempt counting from 0.
 */
export function backoffDelayMs(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const initial = options.initialMs ?? DEFAULT_BACKOFF.initialMs;
  const max = options.maxMs ?? DEFAULT_BACKOFF.maxMs;
  // 2^attempt overflows to Infinity long after it passed any cap; min() keeps it finite.
  const cap = Math.min(max, initial * 2 ** Math.max(0, attempt));
  return random() * cap;
}

/** The longest a refusal's Retry-After makes the client wait, ms. */
export const MAX_RETRY_AFTER_MS = 60_000;

/**
 * A Retry-After header (seconds) in ms, at most MAX_RETRY_AFTER_MS; undefined when there is
 * none or it is not a non-negative number of seconds (the relay sends seconds, not a date).
 */
export function retryAfterMs(header: string | undefined): number | undefined {
  if (header === undefined || !/^\s*\d+(\.\d+)?\s*$/.test(header)) {
    return undefined;
  }
  return Math.min(Number(header) * 1000, MAX_RETRY_AFTER_MS);
}

/** A history id ("<ms>-<seq>") as two numbers, or undefined when it is not one. */
function parseId(id: string): [number, number] | undefined {
  const match = /^(\d+)-(\d+)$/.exec(id);
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

/** Orders two history ids as Redis does: -1, 0 or 1. Throws on a malformed id. */
export function compareIds(a: string, b: string): number {
  const left = parseId(a);
  const right = parseId(b);
  if (left === undefined || right === undefined) {
    throw new TypeError(`not a history id: ${left === undefined ? a : b}`);
  }
  return Math.sign(left[0] - right[0]) || Math.sign(left[1] - right[1]);
}

/**
 * What a resuming client has seen: the newest id overall (where to resume from) and the
 * newest per bot (what is a repeat). Ids are per bot's stream, so two bots may share one.
 */
export class ResumePoint {
  private newest: string | undefined;
  private readonly newestByBot = new Map<string, string>();
  private readonly resumedFrom: string | undefined;

  /** `since`: where an earlier session left off (its last id; the relay replays it again). */
  constructor(since?: string) {
    this.newest = since;
    this.resumedFrom = since;
  }

  /** The id to resume from (the relay replays from it inclusive), if any. */
  get since(): string | undefined {
    return this.newest;
  }

  /** Records an envelope's id; false when it was seen before (an id ≤ its bot's newest). */
  accept(bot: string, id: string): boolean {
    const last = this.newestByBot.get(bot);
    if (last !== undefined ? compareIds(id, last) <= 0 : id === this.resumedFrom) {
      return false;
    }
    this.newestByBot.set(bot, id);
    const newest = this.newest;
    if (newest === undefined || !/^\d+-\d+$/.test(newest) || compareIds(id, newest) > 0) {
      this.newest = id;
    }
    return true;
  }
}
