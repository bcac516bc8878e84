// Compiled (not run) by tests/integration/test_js_client.py (npm run typecheck): the events and
// envelopes are typed, so these mistakes are compile errors (@ts-expect-error fails if not).
import { RelayClient, publishHeartbeat, type Publisher } from "../src/index.js";

const client = new RelayClient("ws://localhost:2808/", { bots: ["bot:pingpong/*"] });
client.on("message", (envelope) => {
  const type: "ping" | "pong" = envelope.data.type;
  const relayMs: number = envelope.timestamp;
  // @ts-expect-error latency may be absent or null
  const latency: number = envelope.data.latency;
  void [type, relayMs, latency];
});
client.on("gap", (gap) => {
  const reason: "trimmed" | "relay_deaf" = gap.reason;
  void reason;
});
client.on("alert", (alert) => {
  // @ts-expect-error a BotAlert's state is one of three strings
  const state: number = alert.state;
  void state;
});
client.on("error", (error) => void error.code);
// @ts-expect-error no such event
client.on("mesage", () => undefined);
// @ts-expect-error types are ping and pong
void client.subscribe({ types: ["pang"] });

declare const redis: Publisher;
// @ts-expect-error a heartbeat's type is ping or pong
void publishHeartbeat(redis, { type: "hello", latency: 1 });
