// Generated from the relay's AsyncAPI document by `python -m scripts.gen_ts_types`
// (`npm run gen-types`); do not edit: tests/unit/test_ts_types.py fails on drift.
// AsyncAPI 3.0.0, pingpong-relay 0.1.0.

/** A heartbeat a bot publishes to Redis: a JSON object of at most 16,384 bytes (--max-message-bytes), nested at most 32 levels deep (the object itself is one). Fields other than these four are kept and forwarded as sent; null in an optional field means absent. */
export type BotMessage = {
  /** which half of the heartbeat this is */
  type: "ping" | "pong";
  /** measured round trip to the exchange, in ms (0 to 3,600,000: an hour) */
  latency?: number | null;
  /** the bot's clock when it sent the message, ms since the epoch (0 to 10,000,000,000,000) */
  timestamp?: number | null;
  /** which bot: 1-128 characters of A-Z a-z 0-9 _ . : @ / + -; the bot id is <channel>/<source> */
  source?: string | null;
  /** "down" or "degraded": the bot reports itself so, and is so at once (the built-in report rules) until a message without it; any other value means nothing */
  status?: unknown;
  /** why the bot reports itself down or degraded, in words */
  reason?: unknown;
  /** how a heartbeat reached Redis when the bot did not publish it itself: push (a push URL), healthchecks (a ping URL), mqtt, or poll */
  via?: unknown;
  /** fields other than these are kept and forwarded as sent */
  [key: string]: unknown;
};

/** A command a client sends on the socket (a text frame of at most 4,096 bytes). subscribe adds to each named field, unsubscribe removes from it; list asks for the subscription and the bots seen; refresh replaces the connection's token. */
export type Command = {
  /** what to do */
  action: "subscribe" | "unsubscribe" | "list" | "refresh";
  /** message types: some of ping, pong (a list or a comma-separated string) */
  types?: string[] | string;
  /** bots: ids or shell-style patterns (bot:pingpong/gate-*), at most 100, each 1-200 characters (a list or a comma-separated string) */
  bots?: string[] | string;
  /** events: some of pingpong, status, alerts, stats, relay (a list or a comma-separated string) */
  events?: string[] | string;
  /** any id of yours, echoed in the reply */
  id?: string | number | null;
  /** refresh only: the new token (same subject) */
  token?: string;
};

/** A heartbeat, as the design specifies it: exactly these four keys. */
export type Envelope = {
  type: "bot:pingpong";
  data: BotMessage;
  /** the relay's clock when it received the message */
  timestamp: number;
  source: "bot";
};

/** A heartbeat for clients that asked for ids (?ids=1, ?since=, ?last=): the envelope plus its history id (absent when history is off) and its bot. */
export type TaggedEnvelope = {
  type: "bot:pingpong";
  data: BotMessage;
  /** ms since the epoch */
  timestamp: number;
  source: "bot";
  /** a history id */
  id?: string;
  /** <channel>/<source>, or the channel */
  bot: string;
};

/** The answer to subscribe, unsubscribe and refresh. */
export type Ack = {
  type: "ack";
  action: "subscribe" | "unsubscribe" | "refresh";
  subscription?: {
    types: (("ping" | "pong")[]) | "all";
    bots: string[] | "all";
    events: ("pingpong" | "status" | "alerts" | "stats" | "relay")[];
    ids?: true;
  };
  expires_at_ms?: number | null;
  /** the command's id, echoed when it had one */
  id?: string | number;
};

/** The answer to list: the subscription and every bot the relay has seen. */
export type Subscriptions = {
  type: "subscriptions";
  subscription: {
    types: (("ping" | "pong")[]) | "all";
    bots: string[] | "all";
    events: ("pingpong" | "status" | "alerts" | "stats" | "relay")[];
    ids?: true;
  };
  bots: string[];
  /** the command's id, echoed when it had one */
  id?: string | number;
};

/** A command (or a replay) the relay could not follow; the connection stays open. */
export type ErrorReply = {
  type: "error";
  /** invalid_json, bad_command, unknown_action, bad_field, oversize, rate_limited, history_off, replay_failed, auth_off, bad_token, a token refusal reason (expired, …), internal_error */
  error: string;
  message: string;
  /** the command's id, echoed when it had one */
  id?: string | number;
};

/** A bot's status (events=status): on every change, and every watched bot's current one when the client starts watching. */
export type BotStatus = {
  type: "bot:status";
  bot: string;
  status: "up" | "degraded" | "pending" | "down";
  previous: "up" | "degraded" | "pending" | "down" | null;
  /** ms since the epoch */
  since_ms: number;
  /** ms since the epoch */
  at_ms: number;
  /** ms since the epoch */
  last_seen_ms: number;
  reason: string;
};

/** An alert transition (events=alerts): pending, firing, resolved. */
export type BotAlert = {
  type: "bot:alert";
  rule: string;
  kind: "latency" | "silence" | "report";
  bot: string;
  state: "pending" | "firing" | "resolved";
  /** ms since the epoch */
  since_ms: number;
  /** ms since the epoch */
  at_ms: number;
  value: number | null;
  threshold: number;
  repeat: boolean;
  fired: boolean;
  summary: string;
  /** present when a mute (/api/mutes) covers the alert: shown, but sent to no notification channel and no webhook */
  muted?: true;
};

/** Statistics (events=stats) every --stats-interval for each watched bot, and for all bots as bot "*". */
export type BotStats = {
  type: "bot:stats";
  bot: string;
  /** ms since the epoch */
  generated_at_ms: number;
  windows: { [key: string]: {
      window: string;
      count: number;
      ping: number;
      pong: number;
      rate_per_s: number;
      latency_ms: {
        min: number | null;
        mean: number | null;
        p50: number | null;
        p95: number | null;
        p99: number | null;
        max: number | null;
        /** fields other than these are kept and forwarded as sent */
        [key: string]: unknown;
      };
      interval_ms?: {
        min: number | null;
        mean: number | null;
        p50: number | null;
        p95: number | null;
        max: number | null;
        /** fields other than these are kept and forwarded as sent */
        [key: string]: unknown;
      };
      /** bot timestamp to relay receipt; `negative` counts clock skew */
      transit_ms?: {
        min: number | null;
        mean: number | null;
        p50: number | null;
        p95: number | null;
        p99: number | null;
        max: number | null;
        /** fields other than these are kept and forwarded as sent */
        [key: string]: unknown;
      };
      /** messages whose timestamp was past --max-clock-skew from the relay's clock: in every figure but `transit_ms` */
      clock_skew?: {
        messages: number;
        /** fields other than these are kept and forwarded as sent */
        [key: string]: unknown;
      };
      /** a message past --max-clock-skew or a negative transit in the window */
      clock_skew_suspected?: boolean;
      /** fields other than these are kept and forwarded as sent */
      [key: string]: unknown;
    } };
};

/** The relay's own state (events=relay): when the client starts watching, when the Redis subscription is lost or back, and every --stats-interval. */
export type RelayState = {
  type: "relay:state";
  /** host:pid */
  relay: string;
  /** ms since the epoch */
  at_ms: number;
  status: "ok" | "unavailable";
  /** subscribed, or what is wrong */
  redis: string;
  clients: number;
  channels: string[];
  uptime_s: number;
  version: string;
  pid: number;
  /** with --workers: which one */
  worker?: number;
  /** why not ok, in general terms (the error itself is logged) */
  reason?: string;
  /** ms since the epoch */
  redis_down_since_ms?: number;
  /** with --mqtt-url: the broker subscription (never a reason for status to be unavailable: Redis is the relay's lifeline) */
  mqtt?: "subscribed" | "disconnected";
  /** with --poll: {targets, polling}: how many targets, and whether this relay polls them (one relay among those on one Redis does) */
  pollers?: {
    targets: number;
    polling: boolean;
  };
};

/** The relay lost its Redis subscription (to_ms null) or got it back (events=status). */
export type RelayDeaf = {
  type: "relay:deaf";
  relay: string;
  /** ms since the epoch */
  from_ms: number;
  to_ms: number | null;
  duration_s?: number;
};

/** With --slow-client conflate: the client's socket was backed up, so it was kept only the newest message per bot and type; this many were skipped. What was kept follows at once. */
export type Conflated = {
  type: "relay:conflated";
  skipped: number;
};

/** Before a replay: history that cannot be sent, because it was trimmed or because the relay was deaf then. */
export type BotGap = {
  type: "bot:gap";
  bot: string;
  reason: "trimmed" | "relay_deaf";
  relay?: string;
  /** a history id */
  from: string;
  /** a history id */
  to: string;
};

/** Every message the relay sends on the WebSocket. */
export type RelayMessage =
  | Envelope
  | TaggedEnvelope
  | Ack
  | Subscriptions
  | ErrorReply
  | BotStatus
  | BotAlert
  | BotStats
  | RelayState
  | RelayDeaf
  | BotGap
  | Conflated;

/** BotMessage's rules from the same schema: what publishHeartbeat checks. */
export const BOT_MESSAGE_RULES = {"types": ["ping", "pong"], "latency": {"min": 0, "max": 3600000}, "timestamp": {"min": 0, "max": 10000000000000}} as const;

/** The pattern a BotMessage source must match. */
export const SOURCE_PATTERN = new RegExp("^[A-Za-z0-9_.:@/+-]{1,128}(?![\\s\\S])");

/** The relay's close codes: code → name. */
export const CLOSE_CODES = {
  1000: "normal closure",
  1001: "going away",
  1002: "protocol error",
  1006: "abnormal closure",
  1008: "policy violation",
  1009: "message too big",
  1011: "internal error",
  4001: "slow client",
  4003: "token expired",
} as const;

/** HTTP statuses the upgrade may answer: status → name. */
export const UPGRADE_STATUSES = {
  101: "Switching Protocols",
  302: "Found",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  426: "Upgrade Required",
  429: "Too Many Requests",
  503: "Service Unavailable",
} as const;
