// Against a real relay: receiving and filtering, live subscribe/unsubscribe, the bot side.
import assert from "node:assert/strict";
import { after, test } from "node:test";

import { Redis } from "ioredis";

import { Heartbeat, HeartbeatError, RelayClient, publishHeartbeat } from "../dist/index.js";
import { env, nextEvent, nodeRedis, recorder, uniqueSource, until } from "./helpers.mjs";

const RELAY = env("PINGPONG_RELAY_URL");
const REDIS = env("PINGPONG_REDIS_URL");
const redis = await nodeRedis(REDIS);
after(() => redis.quit());

const shown = (messages) => messages.map((m) => `${m.data.type}:${m.data.latency}`);

test("server-side filters, then subscribe and unsubscribe on the open connection", async () => {
  const a = uniqueSource("filter-a");
  const b = uniqueSource("filter-b");
  const client = new RelayClient(RELAY, { bots: [`bot:pingpong/${a}`], types: ["ping"] });
  try {
    const seen = recorder(client);
    await nextEvent(client, "open");
    await publishHeartbeat(redis, { type: "ping", latency: 1, source: a });
    await publishHeartbeat(redis, { type: "pong", latency: 2, source: a });
    await publishHeartbeat(redis, { type: "ping", latency: 3, source: b });
    await publishHeartbeat(redis, { type: "ping", latency: 4, source: a });
    await seen.until(2);
    const ack = await client.subscribe({ types: ["pong"] });
    assert.equal(ack.action, "subscribe");
    assert.deepEqual([...ack.subscription.types].sort(), ["ping", "pong"]);
    await publishHeartbeat(redis, { type: "pong", latency: 5, source: a });
    await seen.until(3);
    const removed = await client.unsubscribe({ types: ["ping"] });
    assert.deepEqual(removed.subscription.types, ["pong"]);
    await publishHeartbeat(redis, { type: "ping", latency: 6, source: a });
    await publishHeartbeat(redis, { type: "pong", latency: 7, source: a });
    await seen.until(4);
    // Relayed in order, so what was filtered out would have come before what followed it.
    assert.deepEqual(shown(seen.messages), ["ping:1", "ping:4", "pong:5", "pong:7"]);
    for (const envelope of seen.messages) {
      assert.equal(envelope.bot, `bot:pingpong/${a}`);
      assert.match(envelope.id, /^\d+-\d+$/);
    }
  } finally {
    client.close();
  }
});

test("for await over the client: from when the iteration starts, until it breaks", async () => {
  const source = uniqueSource("iterate");
  const client = new RelayClient(RELAY, { bots: [`bot:pingpong/${source}`] });
  try {
    await nextEvent(client, "open");
    const iterated = (async () => {
      const latencies = [];
      for await (const envelope of client) {
        latencies.push(envelope.data.latency);
        if (latencies.length === 3) break;
      }
      return latencies;
    })();
    for (const latency of [10, 11, 12]) {
      await publishHeartbeat(redis, { type: "ping", latency, source });
    }
    assert.deepEqual(await iterated, [10, 11, 12]);
  } finally {
    client.close();
  }
});

test("publishHeartbeat with node-redis and ioredis; an invalid heartbeat is never sent", async () => {
  const source = uniqueSource("bot-side");
  const io = new Redis(REDIS);
  // What reaches Redis, whether or not the relay would accept it.
  const raw = [];
  const listener = redis.duplicate();
  await listener.connect();
  await listener.subscribe("bot:pingpong", (message) => {
    if (message.includes(source)) raw.push(JSON.parse(message));
  });
  const client = new RelayClient(RELAY, { bots: [`bot:pingpong/${source}`] });
  try {
    const seen = recorder(client);
    await nextEvent(client, "open");
    const before = Date.now();
    assert.ok((await publishHeartbeat(redis, { type: "ping", latency: 12.5, source })) >= 1);
    await assert.rejects(
      publishHeartbeat(io, { type: "ping", latency: -1, source }),
      (error) => error instanceof HeartbeatError && error.field === "latency",
    );
    await assert.rejects(
      publishHeartbeat(io, { type: "pong", source: `${source} with spaces` }),
      (error) => error instanceof HeartbeatError && error.field === "source",
    );
    assert.ok((await publishHeartbeat(io, { type: "pong", latency: 3, source })) >= 1);
    await seen.until(2);
    const [ping, pong] = seen.messages;
    assert.deepEqual(
      { type: ping.data.type, latency: ping.data.latency, source: ping.data.source },
      { type: "ping", latency: 12.5, source },
    );
    assert.ok(ping.data.timestamp >= before && ping.data.timestamp <= Date.now());
    assert.deepEqual([pong.data.type, pong.data.latency], ["pong", 3]);
    // The listener subscribed first, so it sees everything published: the two valid ones.
    await until(() => raw.length >= 2, "the raw listener saw both heartbeats");
    assert.deepEqual(raw.map((m) => m.latency), [12.5, 3]);
  } finally {
    client.close();
    io.disconnect();
    await listener.quit();
  }
});

test("Heartbeat times the ping and publishes at its interval until stopped", async () => {
  const source = uniqueSource("heartbeat");
  const client = new RelayClient(RELAY, { bots: [`bot:pingpong/${source}`] });
  let pings = 0;
  const heartbeat = new Heartbeat(redis, {
    source,
    intervalMs: 20,
    ping: () => new Promise((resolve) => setTimeout(() => resolve(++pings), 5)),
  });
  try {
    const seen = recorder(client);
    await nextEvent(client, "open");
    heartbeat.start();
    await seen.until(3);
    await heartbeat.stop();
    for (const envelope of seen.messages.slice(0, 3)) {
      assert.equal(envelope.data.type, "pong");
      assert.equal(envelope.data.source, source);
      assert.ok(envelope.data.latency > 0, `latency ${envelope.data.latency}`);
    }
    const stoppedAt = pings;
    const published = seen.messages.length;
    assert.ok(published <= stoppedAt, "one heartbeat per ping");
  } finally {
    client.close();
  }
});
