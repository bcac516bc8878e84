// Against a relay with --max-connections 1: a refusal's Retry-After sets the next try.
import assert from "node:assert/strict";
import { test } from "node:test";

import { RelayClient } from "../dist/index.js";
import { env, nextEvent } from "./helpers.mjs";

const RELAY = env("PINGPONG_FULL_RELAY_URL");

test("a full relay's 503 Retry-After: 5 is waited for, not the backoff's few ms", async () => {
  const holder = new RelayClient(RELAY); // takes the one place
  let client;
  try {
    await nextEvent(holder, "open");
    // Its own backoff would retry within 10 ms, hammering a relay that said when to come back.
    client = new RelayClient(RELAY, { backoff: { initialMs: 10, maxMs: 10 } });
    const closed = await nextEvent(client, "close");
    assert.equal(closed.reason, "HTTP 503");
    assert.equal(closed.retryInMs, 5000);
    assert.equal(client.connected, false);
  } finally {
    client?.close();
    holder.close();
  }
});
