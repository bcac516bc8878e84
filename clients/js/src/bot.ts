// The bot side, for Node bots: publish a heartbeat the relay will accept, or time an
// exchange ping and publish it at an interval. Works with node-redis v4+ and ioredis alike:
// both have publish(channel, message).

import { BOT_MESSAGE_RULES, SOURCE_PATTERN, type BotMessage } from "./protocol.js";

/** Anything with publish(channel, message): a node-redis v4+ client, an ioredis one. */
export interface Publisher {
  publish(channel: string, message: string): Promise<unknown>;
}

export interface HeartbeatInput {
  type: "ping" | "pong";
  /** the measured round trip, ms */
  latency?: number;
  /** the bot's name: the relay's bot id is <channel>/<source> */
  source?: string;
  /** the Redis channel (default bot:pingpong) */
  channel?: string;
  /** the bot's clock, ms since the epoch (default Date.now()) */
  timestamp?: number;
  /** other fields, kept and forwarded by the relay */
  extra?: Record<string, unknown>;
}

export const DEFAULT_CHANNEL = "bot:pingpong";
// The relay's default --max-message-bytes.
const MAX_MESSAGE_BYTES = 16_384;

/** A heartbeat the relay would reject: which field, and why. Nothing was published. */
export class HeartbeatError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`invalid heartbeat: ${field}: ${message}`);
    this.name = "HeartbeatError";
  }
}

function checkNumber(field: "latency" | "timestamp", value: unknown): void {
  if (value === undefined || value === null) {
    return;
  }
  const { min, max } = BOT_MESSAGE_RULES[field];
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
    throw new HeartbeatError(field, `must be a number from ${min} to ${max}, not ${String(value)}`);
  }
}

/** Checks a bot message against the relay's BotMessage schema; throws HeartbeatError. */
export function validateHeartbeat(message: Record<string, unknown>): BotMessage {
  if (!(BOT_MESSAGE_RULES.types as readonly unknown[]).includes(message.type)) {
    throw new HeartbeatError("type", `must be one of ${BOT_MESSAGE_RULES.types.join(", ")}`);
  }
  checkNumber("latency", message.latency);
  checkNumber("timestamp", message.timestamp);
  const source = message.source;
  if (source !== undefined && source !== null) {
    if (typeof source !== "string" || !SOURCE_PATTERN.test(source)) {
      throw new HeartbeatError("source", "must be 1-128 characters of A-Z a-z 0-9 _ . : @ / + -");
    }
  }
  return message as BotMessage;
}

/** The JSON a heartbeat is published as, validated. */
export function heartbeatPayload(input: HeartbeatInput): string {
  const message = validateHeartbeat({
    ...input.extra,
    type: input.type,
    ...(input.latency !== undefined ? { latency: input.latency } : {}),
    timestamp: input.timestamp ?? Date.now(),
    ...(input.source !== undefined ? { source: input.source } : {}),
  });
  const payload = JSON.stringify(message);
  const bytes = new TextEncoder().encode(payload).length;
  if (bytes > MAX_MESSAGE_BYTES) {
    throw new HeartbeatError("message", `${bytes} bytes, over the relay's ${MAX_MESSAGE_BYTES}`);
  }
  return payload;
}

/**
 * Validates and publishes one heartbeat; resolves with what publish returned (the number
 * of subscribers Redis delivered it to). An invalid one throws HeartbeatError, unsent.
 */
export async function publishHeartbeat(redis: Publisher, input: HeartbeatInput): Promise<number> {
  const payload = heartbeatPayload(input);
  return Number(await redis.publish(input.channel ?? DEFAULT_CHANNEL, payload));
}

export interface HeartbeatOptions {
  /** the round trip to time, e.g. an exchange's REST ping */
  ping: () => Promise<unknown>;
  /** ms between heartbeats (default 10,000) */
  intervalMs?: number;
  source?: string;
  channel?: string;
  /** the message type published with the measured latency (default pong) */
  type?: "ping" | "pong";
  /** a failed ping or publish (default: console.error); nothing is published for a failed ping */
  onError?: (error: unknown) => void;
  /** each heartbeat published, with the subscribers it reached */
  onPublished?: (latencyMs: number, receivers: number) => void;
}

/** Times `ping()` and publishes the latency every intervalMs, from start() until stop(). */
export class Heartbeat {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running = false;
  private current: Promise<void> | undefined;

  constructor(
    private readonly redis: Publisher,
    private readonly options: HeartbeatOptions,
  ) {}

  /** One heartbeat now: times the ping, publishes it; resolves with the receivers. */
  async beat(): Promise<number> {
    const started = performance.now();
    await this.options.ping();
    const latency = Math.round((performance.now() - started) * 10) / 10;
    const receivers = await publishHeartbeat(this.redis, {
      type: this.options.type ?? "pong",
      latency,
      ...(this.options.source !== undefined ? { source: this.options.source } : {}),
      ...(this.options.channel !== undefined ? { channel: this.options.channel } : {}),
    });
    this.options.onPublished?.(latency, receivers);
    return receivers;
  }

  /** Starts beating: one heartbeat at once, then one every intervalMs (never overlapping). */
  start(): void {
    if (this.running) {
      return;
    }
    this.running = true;
    this.tick();
  }

  /** Stops, and waits for a heartbeat under way. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.current;
  }

  private tick(): void {
    this.current = this.beat().then(
      () => undefined,
      (error: unknown) => (this.options.onError ?? reportError)(error),
    );
    void this.current.then(() => {
      if (this.running) {
        this.timer = setTimeout(() => this.tick(), this.options.intervalMs ?? 10_000);
      }
    });
  }
}

function reportError(error: unknown): void {
  console.error("pingpong-relay-client: heartbeat failed:", error);
}
