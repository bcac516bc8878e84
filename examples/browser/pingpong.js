// pingpong-relay in the browser: watch a relay's bot heartbeats with the standard WebSocket API.
//
// No build step and no dependency: any page can `import { watchRelay } from './pingpong.js'`.
// It runs unchanged under Node.js 22+, whose global WebSocket is the same WHATWG one.

const BACKOFF_BASE_MS = 250;
const BACKOFF_CAP_MS = 5000;

function isoTime(ms) {
  if (typeof ms !== 'number') return null;
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/**
 * The heartbeat in an envelope the relay sent, or null for any other message.
 * @returns {{type: string, latencyMs: number|null, botTime: string|null, relayTime: string|null,
 *            envelope: object} | null}
 */
export function parseHeartbeat(text) {
  let envelope;
  try {
    envelope = JSON.parse(text);
  } catch {
    return null;
  }
  if (envelope === null || envelope.type !== 'bot:pingpong') return null;
  const data = envelope.data;
  if (data === null || typeof data !== 'object') return null;
  return {
    type: String(data.type),
    latencyMs: typeof data.latency === 'number' ? data.latency : null,
    botTime: isoTime(data.timestamp),
    relayTime: isoTime(envelope.timestamp),
    envelope,
  };
}

/** One line for a heartbeat, e.g. "PING from bot: latency 12.5 ms, bot time …, relay time …". */
export function formatHeartbeat(heartbeat) {
  const latency = heartbeat.latencyMs === null ? 'N/A' : `${heartbeat.latencyMs} ms`;
  return (
    `${heartbeat.type.toUpperCase()} from bot: latency ${latency}, ` +
    `bot time ${heartbeat.botTime ?? 'N/A'}, relay time ${heartbeat.relayTime ?? 'N/A'}`
  );
}

/** ?relay=ws://… in the page's address, else ws://<the page's host>:2808 (wss on https). */
export function relayUrlFrom(location) {
  const given = new URLSearchParams(location.search).get('relay');
  if (given) return given;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${location.hostname || 'localhost'}:2808`;
}

/**
 * Connects to a relay and calls onHeartbeat(heartbeat) for every ping/pong it broadcasts.
 * Reconnects with capped exponential backoff when the connection drops, until close().
 *
 * options.onStatus(status, detail) hears 'connected', 'disconnected' (detail: the close
 * code and the delay before the next try, in ms) and 'closed'.
 * options.WebSocketImpl replaces the global WebSocket (for tests or older runtimes).
 * @returns {{close: () => void}}
 */
export function watchRelay(url, onHeartbeat, options = {}) {
  const WebSocketImpl = options.WebSocketImpl ?? globalThis.WebSocket;
  const onStatus = options.onStatus ?? (() => {});
  if (typeof WebSocketImpl !== 'function') {
    throw new TypeError('no WebSocket implementation: pass options.WebSocketImpl');
  }
  let socket = null;
  let attempt = 0;
  let retryTimer = null;
  let closed = false;

  function connect() {
    retryTimer = null;
    socket = new WebSocketImpl(url);
    socket.addEventListener('open', () => {
      attempt = 0;
      onStatus('connected', { url });
    });
    socket.addEventListener('message', (event) => {
      if (typeof event.data !== 'string') return;
      const heartbeat = parseHeartbeat(event.data);
      if (heartbeat !== null) onHeartbeat(heartbeat);
    });
    // An 'error' is always followed by a 'close', which is where the retry is planned.
    socket.addEventListener('close', (event) => {
      socket = null;
      if (closed) {
        onStatus('closed', { url });
        return;
      }
      const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 30));
      // Equal jitter: a relay restart does not bring every tab back in the same instant.
      const delayMs = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
      attempt += 1;
      onStatus('disconnected', { url, code: event.code, delayMs });
      retryTimer = setTimeout(connect, delayMs);
    });
  }

  connect();
  return {
    close() {
      closed = true;
      if (retryTimer !== null) {
        clearTimeout(retryTimer);
        retryTimer = null;
        onStatus('closed', { url });
      }
      if (socket !== null) socket.close(1000, 'client done');
    },
  };
}
