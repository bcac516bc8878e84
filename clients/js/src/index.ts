// pingpong-relay-client: the WebSocket client (browsers and Node) and the Node bot side.

export { RelayClient, RelayClientError } from "./client.js";
export type { EventName, Filter, HeartbeatEnvelope, RelayClientEvents, RelayClientOptions } from "./client.js";
export {
  backoffDelayMs,
  compareIds,
  MAX_RETRY_AFTER_MS,
  ResumePoint,
  retryAfterMs,
  type BackoffOptions,
} from "./backoff.js";
export type { Refusal, WebSocketConstructor } from "./socket.js";
export { Heartbeat, HeartbeatError, publishHeartbeat, validateHeartbeat } from "./bot.js";
export type { HeartbeatOptions, HeartbeatInput, Publisher } from "./bot.js";
export * from "./protocol.js";
