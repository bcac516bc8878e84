// Shared by the node tests: env lookups, waiting on client events, Redis clients.
import { createClient } from "redis";

/** An environment variable the pytest sets (tests/integration/test_js_client.py). */
export function env(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run these tests through tests/integration/test_js_client.py`);
  }
  return value;
}

/** A unique bot source for one test, so tests sharing a relay do not see each other. */
export function uniqueSource(prefix) {
  return `${prefix}-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
}

/** Resolves with the next `name` event of `client` matching `match`; rejects after timeoutMs. */
export function nextEvent(client, name, { match = () => true, timeoutMs = 15_000 } = {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${name} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = client.on(name, (value) => {
      if (match(value)) {
        clearTimeout(timer);
        off();
        resolve(value);
      }
    });
  });
}

/** Every `message` event of `client`, and a way to wait until there are `count` of them. */
export function recorder(client) {
  const messages = [];
  const waiters = [];
  client.on("message", (envelope) => {
    messages.push(envelope);
    for (const waiter of [...waiters]) {
      if (messages.length >= waiter.count) {
        waiters.splice(waiters.indexOf(waiter), 1);
        clearTimeout(waiter.timer);
        waiter.resolve(messages);
      }
    }
  });
  return {
    messages,
    until(count, timeoutMs = 15_000) {
      if (messages.length >= count) return Promise.resolve(messages);
      return new Promise((resolve, reject) => {
        const waiter = { count, resolve };
        waiter.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          const seen = messages.map((m) => `${m.data.type}:${m.data.latency}`).join(" ");
          reject(new Error(`${messages.length} of ${count} messages within ${timeoutMs} ms: ${seen}`));
        }, timeoutMs);
        waiters.push(waiter);
      });
    },
  };
}

/** A connected node-redis client. */
export async function nodeRedis(url) {
  const client = createClient({ url });
  client.on("error", () => undefined); // reconnects by itself; a test fails on its own terms
  await client.connect();
  return client;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `check()` is true, looking every 10 ms; rejects after timeoutMs. */
export async function until(check, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(10);
  }
}
