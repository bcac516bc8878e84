// The client's logic without a relay: backoff, resume, dead-connection detection, refusals.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  RelayClient,
  ResumePoint,
  MAX_RETRY_AFTER_MS,
  backoffDelayMs,
  compareIds,
  retryAfterMs,
  validateHeartbeat,
  HeartbeatError,
} from "../dist/index.js";
import { nextEvent } from "./helpers.mjs";

test("backoff: full jitter within [0, min(max, initial * 2^n)]", () => {
  const top = () => 0.999999;
  assert.equal(backoffDelayMs(0, {}, () => 0), 0);
  assert.ok(backoffDelayMs(0, {}, top) < 500 && backoffDelayMs(0, {}, top) > 499);
  assert.ok(backoffDelayMs(3, {}, top) > 3999 && backoffDelayMs(3, {}, top) < 4000);
  assert.ok(backoffDelayMs(50, {}, top) > 19999 && backoffDelayMs(50, {}, top) < 20000);
  assert.ok(backoffDelayMs(2000, { initialMs: 10, maxMs: 100 }, top) < 100);
  assert.equal(backoffDelayMs(1, { initialMs: 10, maxMs: 100 }, () => 0.5), 10);
});

test("Retry-After: seconds in ms, capped; anything else ignored", () => {
  assert.equal(retryAfterMs("5"), 5000);
  assert.equal(retryAfterMs(" 1 "), 1000);
  assert.equal(retryAfterMs("0"), 0);
  assert.equal(retryAfterMs("2.5"), 2500);
  assert.equal(retryAfterMs("60"), MAX_RETRY_AFTER_MS);
  assert.equal(retryAfterMs("86400"), MAX_RETRY_AFTER_MS);
  assert.equal(retryAfterMs("9".repeat(400)), MAX_RETRY_AFTER_MS);
  for (const ignored of [undefined, "", "soon", "-1", "+5", "1e3", "NaN", "Infinity",
    "Wed, 21 Oct 2026 07:28:00 GMT"]) {
    assert.equal(retryAfterMs(ignored), undefined, String(ignored));
  }
});

test("history ids are ordered as Redis orders them", () => {
  assert.equal(compareIds("1700000000000-2", "1700000000000-10"), -1);
  assert.equal(compareIds("1700000000001-0", "1700000000000-10"), 1);
  assert.equal(compareIds("5-5", "5-5"), 0);
  assert.throws(() => compareIds("5", "5-0"), TypeError);
});

test("resume point: per-bot repeats dropped, the newest id overall kept", () => {
  const point = new ResumePoint("10-0");
  assert.equal(point.accept("a", "10-0"), false, "where the last session left off, replayed");
  assert.equal(point.accept("a", "11-0"), true);
  assert.equal(point.accept("b", "11-0"), true, "another bot's stream may have the same id");
  assert.equal(point.accept("a", "11-0"), false);
  assert.equal(point.accept("a", "10-5"), false);
  assert.equal(point.accept("b", "12-0"), true);
  assert.equal(point.since, "12-0");
});

test("validateHeartbeat follows the BotMessage schema", () => {
  assert.deepEqual(validateHeartbeat({ type: "ping", latency: 0 }), { type: "ping", latency: 0 });
  for (const [message, field] of [
    [{ type: "pang" }, "type"],
    [{ type: "ping", latency: -1 }, "latency"],
    [{ type: "ping", latency: 3_600_001 }, "latency"],
    [{ type: "ping", latency: true }, "latency"],
    [{ type: "ping", latency: Number.NaN }, "latency"],
    [{ type: "ping", timestamp: 1e13 + 1 }, "timestamp"],
    [{ type: "ping", source: "has space" }, "source"],
    [{ type: "ping", source: "x".repeat(129) }, "source"],
    [{ type: "ping", source: "" }, "source"],
  ]) {
    assert.throws(() => validateHeartbeat(message), (error) => {
      assert.ok(error instanceof HeartbeatError);
      assert.equal(error.field, field, JSON.stringify(message));
      return true;
    });
  }
});

/** A WebSocket that the test drives: each instance is kept in `sockets`. */
function fakeWebSocket() {
  const sockets = [];
  class FakeSocket {
    constructor(url, protocols) {
      this.url = new URL(url);
      this.protocols = protocols;
      this.sent = [];
      sockets.push(this);
      setTimeout(() => this.onopen?.({}), 0);
    }
    send(text) {
      this.sent.push(JSON.parse(text));
    }
    close(code = 1000, reason = "") {
      this.serverClose(code, reason);
    }
    deliver(message) {
      this.onmessage?.({ data: JSON.stringify(message) });
    }
    serverClose(code, reason = "") {
      if (!this.closed) {
        this.closed = true;
        setTimeout(() => this.onclose?.({ code, reason }), 0);
      }
    }
  }
  return { FakeSocket, sockets };
}

const envelope = (bot, id, latency) => ({
  type: "bot:pingpong",
  data: { type: "ping", latency },
  timestamp: 1,
  source: "bot",
  id,
  bot,
});

test("a reconnect resumes from the last id and drops what it delivered already", async () => {
  const { FakeSocket, sockets } = fakeWebSocket();
  const client = new RelayClient("ws://relay.test/", {
    WebSocket: FakeSocket,
    token: "t0k",
    bots: ["bot:pingpong/a"],
    random: () => 0,
    idleTimeoutMs: 0,
  });
  const received = [];
  client.on("message", (e) => received.push(e.data.latency));
  await nextEvent(client, "open");
  const first = sockets[0];
  assert.equal(first.url.searchParams.get("ids"), "1");
  assert.equal(first.url.searchParams.get("since"), null);
  assert.equal(first.url.searchParams.get("bots"), "bot:pingpong/a");
  assert.deepEqual(first.protocols, ["pingpong.v1", "bearer.t0k"]);
  first.deliver(envelope("bot:pingpong/a", "5-0", 1));
  first.serverClose(1001, "going away");
  const closed = await nextEvent(client, "close");
  assert.equal(closed.code, 1001);
  assert.equal(closed.retryInMs, 0);
  await nextEvent(client, "open");
  const second = sockets[1];
  assert.equal(second.url.searchParams.get("since"), "5-0");
  second.deliver(envelope("bot:pingpong/a", "5-0", 1)); // the relay's since is inclusive
  second.deliver(envelope("bot:pingpong/a", "6-0", 2));
  assert.deepEqual(received, [1, 2]);
  assert.equal(client.lastId, "6-0");
  client.close();
});

test("a connection silent past the idle timeout is probed, then dropped and replaced", async () => {
  const { FakeSocket, sockets } = fakeWebSocket();
  const client = new RelayClient("ws://relay.test/", {
    WebSocket: FakeSocket,
    random: () => 0,
    idleTimeoutMs: 20,
    probeTimeoutMs: 20,
  });
  await nextEvent(client, "open");
  const closed = await nextEvent(client, "close");
  assert.deepEqual(sockets[0].sent, [{ action: "list", id: "pingpong-relay-client:probe" }]);
  assert.equal(closed.code, 1006);
  assert.notEqual(closed.retryInMs, null);
  await nextEvent(client, "open");
  assert.equal(sockets.length, 2);
  // A probe answered keeps the connection.
  const probe = await new Promise((resolve) => {
    const timer = setInterval(() => {
      if (sockets[1].sent.length > 0) {
        clearInterval(timer);
        resolve(sockets[1].sent[0]);
      }
    }, 5);
  });
  sockets[1].deliver({ type: "subscriptions", subscription: {}, bots: [], id: probe.id });
  assert.equal(sockets[1].closed, undefined);
  client.close();
});

test("reconnectNow: only while a retry waits, which it replaces, the backoff starting over", async () => {
  const { FakeSocket, sockets } = fakeWebSocket();
  const client = new RelayClient("ws://relay.test/", {
    WebSocket: FakeSocket,
    backoff: { initialMs: 60_000, maxMs: 60_000 },
    random: () => 0.5,
    idleTimeoutMs: 0,
  });
  await nextEvent(client, "open");
  assert.equal(client.reconnectNow(), false, "connected: nothing to hurry");
  sockets[0].serverClose(1006, "");
  assert.equal((await nextEvent(client, "close")).retryInMs, 30_000);
  assert.equal(client.reconnectNow(), true);
  assert.equal(client.reconnectNow(), false, "the attempt is under way: no second one");
  await nextEvent(client, "open");
  assert.equal(sockets.length, 2);
  client.close();
  assert.equal(client.reconnectNow(), false, "closed for good");
});

test("a token expiry close is reported and not retried until setToken", async () => {
  const { FakeSocket, sockets } = fakeWebSocket();
  const client = new RelayClient("ws://relay.test/", {
    WebSocket: FakeSocket,
    token: "old",
    random: () => 0,
    idleTimeoutMs: 0,
  });
  await nextEvent(client, "open");
  const closed = nextEvent(client, "close");
  const error = nextEvent(client, "error");
  sockets[0].serverClose(4003, "token expired");
  assert.equal((await closed).retryInMs, null);
  assert.equal((await error).code, "token_expired");
  assert.equal(client.connected, false);
  assert.equal(await client.setToken("old"), undefined, "the same token: still stopped");
  assert.equal(sockets.length, 1);
  await client.setToken("new");
  await nextEvent(client, "open");
  assert.deepEqual(sockets[1].protocols, ["pingpong.v1", "bearer.new"]);
  client.close();
});

test("for await yields envelopes and ends on close()", async () => {
  const { FakeSocket, sockets } = fakeWebSocket();
  const client = new RelayClient("ws://relay.test/", { WebSocket: FakeSocket, idleTimeoutMs: 0 });
  await nextEvent(client, "open");
  const seen = [];
  const done = (async () => {
    for await (const e of client) {
      seen.push(e.data.latency);
      if (seen.length === 2) client.close();
    }
  })();
  sockets[0].deliver(envelope("b", "1-0", 7));
  sockets[0].deliver(envelope("b", "2-0", 8));
  sockets[0].deliver(envelope("b", "3-0", 9));
  await done;
  assert.deepEqual(seen, [7, 8]);
});
