// The relay restarted while a bot publishes; another relay on the same Redis records the
// history meanwhile. The client must get every message once, in order.
import assert from "node:assert/strict";
import { after, test } from "node:test";

import { RelayClient, publishHeartbeat } from "../dist/index.js";
import { env, nextEvent, nodeRedis, recorder, sleep, uniqueSource } from "./helpers.mjs";

const RELAY = env("PINGPONG_RESTART_RELAY_URL");
// The pytest restarts that relay when it reads this on Redis (see test_js_client.py).
const CONTROL_CHANNEL = env("PINGPONG_CONTROL_CHANNEL");
const redis = await nodeRedis(env("PINGPONG_REDIS_URL"));
after(() => redis.quit());

test("relay restarted mid-stream: every message once and in order", async () => {
  const source = uniqueSource("restart");
  const client = new RelayClient(RELAY, {
    bots: [`bot:pingpong/${source}`],
    backoff: { initialMs: 100, maxMs: 500 },
  });
  const seen = recorder(client);
  let opens = 0;
  let down = false;
  let publishedWhileDown = 0;
  client.on("open", () => {
    opens++;
    down = false;
  });
  client.on("close", () => {
    down = true;
  });
  try {
    await nextEvent(client, "open");
    let published = 0;
    let afterReopen = 0;
    while (afterReopen < 10) {
      assert.ok(published < 3000, "the relay did not come back");
      await publishHeartbeat(redis, { type: published % 2 ? "pong" : "ping", latency: published, source });
      published++;
      if (published === 20) {
        await redis.publish(CONTROL_CHANNEL, "restart");
      }
      if (down) publishedWhileDown++;
      if (opens >= 2) afterReopen++;
      await sleep(10);
    }
    await seen.until(published, 20_000);
    await sleep(100); // anything repeated would come right behind
    assert.ok(publishedWhileDown > 0, "nothing was published while the relay was down");
    assert.deepEqual(
      seen.messages.map((m) => m.data.latency),
      Array.from({ length: published }, (_, i) => i),
    );
  } finally {
    client.close();
  }
});
