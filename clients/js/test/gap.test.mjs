// History that does not reach back far enough: the relay's bot:gap reaches the client.
import assert from "node:assert/strict";
import { after, test } from "node:test";

import { RelayClient, publishHeartbeat } from "../dist/index.js";
import { env, nextEvent, nodeRedis, recorder, uniqueSource } from "./helpers.mjs";

// A relay that keeps 3 entries per bot (--history-max-entries 3), on a Redis of its own.
const RELAY = env("PINGPONG_TRIM_RELAY_URL");
const redis = await nodeRedis(env("PINGPONG_TRIM_REDIS_URL"));
after(() => redis.quit());

test("resuming past the kept history: a gap event, then what is kept, in order", async () => {
  const source = uniqueSource("gap");
  const bot = `bot:pingpong/${source}`;
  const first = new RelayClient(RELAY, { bots: [bot] });
  const watcher = new RelayClient(RELAY, { bots: [bot] });
  try {
    const seenFirst = recorder(first);
    const watched = recorder(watcher);
    await Promise.all([nextEvent(first, "open"), nextEvent(watcher, "open")]);
    await publishHeartbeat(redis, { type: "ping", latency: 0, source });
    await seenFirst.until(1);
    const lastId = first.lastId;
    assert.match(lastId, /^\d+-\d+$/);
    first.close();
    for (let latency = 1; latency <= 6; latency++) {
      await publishHeartbeat(redis, { type: "ping", latency, source });
    }
    // The watcher asked for ids: it gets each envelope once recorded in the history.
    await watched.until(7);

    const second = new RelayClient(RELAY, { bots: [bot], since: lastId });
    try {
      const seen = recorder(second);
      const gap = await nextEvent(second, "gap");
      assert.equal(gap.bot, bot);
      assert.equal(gap.reason, "trimmed");
      assert.equal(gap.from, lastId);
      assert.equal(gap.to, watched.messages[4].id, "the oldest entry kept");
      await seen.until(3);
      assert.deepEqual(seen.messages.map((m) => m.data.latency), [4, 5, 6]);
    } finally {
      second.close();
    }
  } finally {
    first.close();
    watcher.close();
  }
});
