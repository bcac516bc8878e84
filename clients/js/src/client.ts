// RelayClient: one logical subscription to a relay over as many connections as it takes,
// reconnecting with jittered backoff and resuming from the last envelope it delivered.

import { backoffDelayMs, ResumePoint, type BackoffOptions } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { EnvelopeQueue } from "./queue.js";
import { openConnection, type Connection, type Refusal, type WebSocketConstructor } from "./socket.js";
import type {
  Ack,
  BotAlert,
  BotGap,
  BotStats,
  BotStatus,
  Envelope,
  RelayDeaf,
  RelayMessage,
  RelayState,
  Subscriptions,
  TaggedEnvelope,
} from "./protocol.js";

export type EventName = "pingpong" | "status" | "alerts" | "stats" | "relay";
export type HeartbeatEnvelope = Envelope | TaggedEnvelope;

/** What to receive; an absent field means the relay's default (every type, every bot). */
export interface Filter {
  types?: ("ping" | "pong")[];
  bots?: string[];
  events?: EventName[];
}

export interface RelayClientOptions extends Filter {
  /** a JWT for a relay with --auth jwt (sent as the bearer.<jwt> subprotocol) */
  token?: string;
  /** ask for ids and reconnect with since=<last id>: nothing missed, nothing twice (default true) */
  resume?: boolean;
  /** where an earlier session left off (its lastId): the first connection resumes from it */
  since?: string;
  backoff?: BackoffOptions;
  /** no frame for this long: probe the connection with a `list` command (default 30,000; 0: never) */
  idleTimeoutMs?: number;
  /** no frame this long after a probe: the connection is dead, reconnect (default 10,000) */
  probeTimeoutMs?: number;
  /** a WebSocket constructor to use instead of ws (Node) or the global one (browsers) */
  WebSocket?: WebSocketConstructor;
  /** for tests: the jitter's source, [0, 1) */
  random?: () => number;
}

/** Why the client stopped or a command failed. `code`: the relay's error code, or ours. */
export class RelayClientError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly status?: number,
    readonly closeCode?: number,
  ) {
    super(message);
    this.name = "RelayClientError";
  }
}

export interface RelayClientEvents {
  message: HeartbeatEnvelope;
  status: BotStatus | RelayDeaf;
  alert: BotAlert;
  gap: BotGap;
  stats: BotStats;
  relay: RelayState;
  open: { url: string; attempt: number };
  /** retryInMs: when the next attempt is, or null when the client will not retry */
  close: { code: number; reason: string; retryInMs: number | null };
  error: RelayClientError;
}

const PROBE_ID = "pingpong-relay-client:probe";
// Refusals that would only be refused again: a bad URL, a token, a foreign origin.
const FINAL_STATUSES = new Set([400, 401, 403, 404]);
// 1002: a protocol error is ours to fix; 4003: the token expired.
const FINAL_CLOSE_CODES = new Set([1002, 4003]);

interface Pending {
  resolve(reply: Ack | Subscriptions): void;
  reject(error: RelayClientError): void;
}

export class RelayClient extends Emitter<RelayClientEvents> {
  private readonly url: string;
  private readonly options: RelayClientOptions;
  private filter: Filter;
  private token: string | undefined;
  private readonly resume: ResumePoint | undefined;
  private connection: Connection | undefined;
  private isOpen = false;
  private stopped = false; // by close() or by a refusal (until setToken)
  private closedByUser = false;
  private attempt = 0;
  private commandCount = 0;
  private readonly pending = new Map<string, Pending>();
  private readonly queues = new Set<EnvelopeQueue<HeartbeatEnvelope>>();
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(url: string, options: RelayClientOptions = {}) {
    super();
    this.url = url;
    this.options = options;
    this.token = options.token;
    this.filter = { ...pick(options) };
    this.resume = options.resume === false ? undefined : new ResumePoint(options.since);
    this.connect();
  }

  /** The last history id delivered (with resume): keep it to resume a later session. */
  get lastId(): string | undefined {
    return this.resume?.since;
  }

  get connected(): boolean {
    return this.isOpen;
  }

  /** Widens (or narrows) what the relay sends; resolves with the relay's ack. */
  subscribe(filter: Filter): Promise<Ack> {
    return this.command({ action: "subscribe", ...pick(filter) }) as Promise<Ack>;
  }

  unsubscribe(filter: Filter): Promise<Ack> {
    return this.command({ action: "unsubscribe", ...pick(filter) }) as Promise<Ack>;
  }

  /** The subscription and every bot the relay has seen. */
  list(): Promise<Subscriptions> {
    return this.command({ action: "list" }) as Promise<Subscriptions>;
  }

  /**
   * Replaces the token: in-band (the relay's refresh command) when connected, kept only
   * when the relay acks it; else for the next connection; after a refusal, connects with it.
   */
  async setToken(token: string): Promise<Ack | undefined> {
    if (this.isOpen) {
      try {
        const ack = (await this.command({ action: "refresh", token })) as Ack;
        this.token = token;
        return ack;
      } catch (error) {
        // Refused by the relay: the old token stays. Lost connection: the next one uses it.
        if (error instanceof RelayClientError && error.code === "closed") {
          this.token = token;
        }
        throw error;
      }
    }
    const changed = token !== this.token;
    this.token = token;
    if (this.stopped && !this.closedByUser && changed) {
      this.stopped = false;
      this.attempt = 0;
      this.connect();
    }
    return undefined;
  }

  /**
   * While waiting to reconnect, tries at once and starts the backoff over (say, a user's
   * "reconnect now", or a browser back online). Whether an attempt was started.
   */
  reconnectNow(): boolean {
    if (this.retryTimer === undefined || this.stopped) {
      return false;
    }
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.attempt = 0;
    this.connect();
    return true;
  }

  /** Closes the connection for good; iterations end at once (what they buffered is dropped). */
  close(): void {
    if (this.closedByUser) {
      return;
    }
    this.closedByUser = this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.idleTimer);
    // Between connections (a close event was already emitted) there is nothing to close.
    this.connection?.close(1000, "client closed");
    this.endQueues();
  }

  [Symbol.asyncIterator](): AsyncIterator<HeartbeatEnvelope> {
    const queue = new EnvelopeQueue<HeartbeatEnvelope>(() => this.queues.delete(queue));
    if (this.stopped) {
      queue.end();
    } else {
      this.queues.add(queue);
    }
    return queue;
  }

  // --- connecting -------------------------------------------------------------------------
  private connect(): void {
    if (this.closedByUser) {
      return;
    }
    const url = this.connectUrl();
    const protocols = ["pingpong.v1", ...(this.token ? [`bearer.${this.token}`] : [])];
    const attempt = this.attempt;
    openConnection(url, protocols, {
      onOpen: () => this.opened(url, attempt),
      onText: (text) => this.received(text),
      onAlive: () => this.alive(),
      onClose: (code, reason, refusal) => this.lost(code, reason, refusal),
    }, this.options.WebSocket).then(
      (connection) => {
        this.connection = connection;
        if (this.closedByUser) {
          connection.close(1000, "client closed");
        }
      },
      (error: unknown) => this.fail(new RelayClientError(String(error), "no_websocket")),
    );
  }

  private connectUrl(): string {
    const url = new URL(this.url);
    for (const key of ["types", "bots", "events"] as const) {
      const values = this.filter[key];
      if (values !== undefined) {
        url.searchParams.set(key, values.join(","));
      }
    }
    if (this.resume !== undefined) {
      url.searchParams.set("ids", "1");
      const since = this.resume.since;
      if (since !== undefined) {
        url.searchParams.set("since", since);
      }
    }
    return url.toString();
  }

  private opened(url: string, attempt: number): void {
    this.isOpen = true;
    this.attempt = 0;
    this.alive();
    this.emit("open", { url, attempt });
  }

  private lost(code: number, reason: string, refusal?: Refusal): void {
    this.connection = undefined;
    this.isOpen = false;
    clearTimeout(this.idleTimer);
    for (const [id, pending] of this.pending) {
      pending.reject(new RelayClientError("the connection closed", "closed"));
      this.pending.delete(id);
    }
    if (this.closedByUser) {
      this.emit("close", { code, reason, retryInMs: null });
      return;
    }
    const final = refusal !== undefined ? FINAL_STATUSES.has(refusal.status) : FINAL_CLOSE_CODES.has(code);
    if (final) {
      this.emit("close", { code, reason, retryInMs: null });
      this.fail(refusalError(code, reason, refusal));
      return;
    }
    // A relay that refused with Retry-After (a 503 when full, a 429) said when to come back.
    const delay = Math.max(
      backoffDelayMs(this.attempt++, this.options.backoff, this.options.random),
      refusal?.retryAfterMs ?? 0,
    );
    // Scheduled first, so that a close() in a close handler cancels it.
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
    this.emit("close", { code, reason: refusal ? `HTTP ${refusal.status}` : reason, retryInMs: delay });
  }

  /** Stops without retrying (until setToken gives another token) and says why. */
  private fail(error: RelayClientError): void {
    this.stopped = true;
    this.emit("error", error);
    for (const queue of this.queues) {
      queue.fail(error);
    }
    this.queues.clear();
  }

  private endQueues(): void {
    for (const queue of this.queues) {
      queue.end(true);
    }
    this.queues.clear();
  }

  // --- liveness: the relay pings, but a browser cannot see pings, so frames count ----------
  private alive(): void {
    clearTimeout(this.idleTimer);
    const idleMs = this.options.idleTimeoutMs ?? 30_000;
    if (idleMs > 0 && this.isOpen) {
      this.idleTimer = setTimeout(() => this.probe(), idleMs);
    }
  }

  private probe(): void {
    this.connection?.send(JSON.stringify({ action: "list", id: PROBE_ID }));
    this.idleTimer = setTimeout(
      () => this.connection?.terminate(),
      this.options.probeTimeoutMs ?? 10_000,
    );
  }

  // --- receiving ---------------------------------------------------------------------------
  private received(text: string): void {
    let message: RelayMessage;
    try {
      message = JSON.parse(text) as RelayMessage;
    } catch {
      return; // the relay sends JSON only; anything else is not ours to deliver
    }
    switch (message.type) {
      case "bot:pingpong":
        return this.envelope(message);
      case "bot:gap":
        return this.emit("gap", message);
      case "bot:status":
      case "relay:deaf":
        return this.emit("status", message);
      case "bot:alert":
        return this.emit("alert", message);
      case "bot:stats":
        return this.emit("stats", message);
      case "relay:state":
        return this.emit("relay", message);
      case "ack":
      case "subscriptions":
      case "error":
        return this.reply(message);
      default:
        return undefined;
    }
  }

  private envelope(envelope: HeartbeatEnvelope): void {
    if (this.resume !== undefined && "id" in envelope && envelope.id !== undefined) {
      if (!this.resume.accept(envelope.bot, envelope.id)) {
        return; // replayed after a reconnect, and already delivered
      }
    }
    this.emit("message", envelope);
    for (const queue of this.queues) {
      queue.push(envelope);
    }
  }

  // --- commands ----------------------------------------------------------------------------
  private command(body: Record<string, unknown>): Promise<Ack | Subscriptions> {
    const connection = this.connection;
    if (!this.isOpen || connection === undefined) {
      return Promise.reject(new RelayClientError("not connected", "not_connected"));
    }
    const id = `c${++this.commandCount}`;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      connection.send(JSON.stringify({ ...body, id }));
    });
  }

  private reply(message: Extract<RelayMessage, { type: "ack" | "subscriptions" | "error" }>): void {
    const id = message.id === undefined ? undefined : String(message.id);
    const pending = id === undefined ? undefined : this.pending.get(id);
    if (pending === undefined || id === undefined) {
      if (message.type === "error" && id !== PROBE_ID) {
        this.emit("error", new RelayClientError(message.message, message.error));
      }
      return;
    }
    this.pending.delete(id);
    if (message.type === "error") {
      pending.reject(new RelayClientError(message.message, message.error));
      return;
    }
    if (message.type === "ack" && message.subscription !== undefined) {
      // The relay's own view, so that the next connection asks for the same.
      const { types, bots, events } = message.subscription;
      this.filter = {
        ...(types === "all" ? {} : { types }),
        ...(bots === "all" ? {} : { bots }),
        events,
      };
    }
    pending.resolve(message);
  }
}

function pick(filter: Filter): Filter {
  const picked: Filter = {};
  if (filter.types !== undefined) picked.types = [...filter.types];
  if (filter.bots !== undefined) picked.bots = [...filter.bots];
  if (filter.events !== undefined) picked.events = [...filter.events];
  return picked;
}

function refusalError(code: number, reason: string, refusal?: Refusal): RelayClientError {
  if (refusal === undefined) {
    const what = code === 4003 ? "token_expired" : "protocol_error";
    return new RelayClientError(`the relay closed the connection: ${code} ${reason}`, what, undefined, code);
  }
  const why = [refusal.error, refusal.reason, refusal.message].filter(Boolean).join(": ");
  return new RelayClientError(
    `the relay refused the connection: HTTP ${refusal.status}${why ? ` (${why})` : ""}`,
    refusal.reason ?? refusal.error ?? "refused",
    refusal.status,
    code,
  );
}
