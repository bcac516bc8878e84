// Against a relay with --auth jwt: a refused token is reported, not retried; setToken.
import assert from "node:assert/strict";
import { after, test } from "node:test";

import { RelayClient, publishHeartbeat } from "../dist/index.js";
import { env, nextEvent, nodeRedis, recorder, uniqueSource } from "./helpers.mjs";

const RELAY = env("PINGPONG_JWT_RELAY_URL");
const redis = await nodeRedis(env("PINGPONG_REDIS_URL"));
after(() => redis.quit());

test("an expired token: one error with the relay's reason, no retry; setToken connects", async () => {
  const source = uniqueSource("auth");
  const client = new RelayClient(RELAY, {
    token: env("PINGPONG_TOKEN_EXPIRED"),
    bots: [`bot:pingpong/${source}`],
    backoff: { initialMs: 10, maxMs: 10 },
  });
  let opens = 0;
  client.on("open", () => opens++);
  try {
    const closed = nextEvent(client, "close");
    const error = await nextEvent(client, "error");
    assert.equal(error.status, 401);
    assert.equal(error.code, "expired");
    assert.match(error.message, /401/);
    assert.equal((await closed).retryInMs, null);
    assert.equal(opens, 0);
    assert.equal(client.connected, false);

    const opened = nextEvent(client, "open");
    assert.equal(await client.setToken(env("PINGPONG_TOKEN")), undefined);
    await opened;
    // In-band refresh on the open connection: the relay acks with the new expiry.
    const ack = await client.setToken(env("PINGPONG_TOKEN_REFRESHED"));
    assert.equal(ack.action, "refresh");
    assert.equal(ack.expires_at_ms, Number(env("PINGPONG_TOKEN_REFRESHED_EXP")) * 1000);
    await assert.rejects(client.setToken("not-a-jwt"), (e) => e.code !== undefined);
    const seen = recorder(client);
    await publishHeartbeat(redis, { type: "ping", latency: 1, source });
    await seen.until(1);
    assert.equal(opens, 1, "still the one connection");
  } finally {
    client.close();
  }
});
