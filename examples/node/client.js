#!/usr/bin/env node
// A Node.js client for pingpong-relay: prints every bot ping/pong the relay broadcasts.
//
//   node client.js [ws://HOST:2808] [--count N]
//
// The URL comes from the first argument, else $RELAY_URL, else ws://localhost:2808.
// With --count N it exits after N heartbeats; otherwise it runs until Ctrl-C and
// reconnects by itself (capped exponential backoff) whenever the connection drops.
'use strict';

const WebSocket = require('ws');

const DEFAULT_URL = 'ws://localhost:2808';
const BACKOFF_BASE_MS = 250;
const BACKOFF_CAP_MS = 5000;

function usage(problem) {
  console.error(`client.js: ${problem}`);
  console.error('usage: node client.js [ws://HOST:PORT/] [--count N]');
  process.exit(2);
}

function parseArgs(argv) {
  const options = { url: process.env.RELAY_URL || DEFAULT_URL, count: 0 };
  let urlGiven = false;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--count') {
      const count = Number(argv[i + 1]);
      if (!Number.isInteger(count) || count < 1) usage('--count needs a whole number > 0');
      options.count = count;
      i += 1;
    } else if (arg.startsWith('-')) {
      usage(`unknown option ${arg}`);
    } else if (!urlGiven) {
      options.url = arg;
      urlGiven = true;
    } else {
      usage(`unexpected argument ${arg}`);
    }
  }
  return options;
}

function isoTime(ms) {
  if (typeof ms !== 'number') return 'N/A';
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? 'N/A' : date.toISOString();
}

// One line per heartbeat: the data type, the bot's latency, the bot's and the relay's clocks.
function describe(envelope) {
  const data = envelope.data;
  const latency = typeof data.latency === 'number' ? `${data.latency} ms` : 'N/A';
  return (
    `${String(data.type).toUpperCase()} from bot: latency ${latency}, ` +
    `bot time ${isoTime(data.timestamp)}, relay time ${isoTime(envelope.timestamp)}`
  );
}

function main() {
  const { url, count } = parseArgs(process.argv.slice(2));
  let received = 0;
  let attempt = 0;
  let stopping = false;
  let socket = null;
  let retryTimer = null;

  function stop() {
    stopping = true;
    clearTimeout(retryTimer);
    if (socket !== null) socket.close(1000, 'client done');
  }

  function connect() {
    socket = new WebSocket(url);

    socket.on('open', () => {
      attempt = 0;
      console.log(`connected to ${url}`);
    });

    socket.on('message', (raw, isBinary) => {
      if (isBinary) return;
      let message;
      try {
        message = JSON.parse(raw.toString('utf8'));
      } catch (err) {
        console.error(`ignoring a message that is not JSON: ${err.message}`);
        return;
      }
      if (message.type !== 'bot:pingpong' || message.data === null || typeof message.data !== 'object') {
        return;
      }
      console.log(describe(message));
      received += 1;
      if (count && received >= count) stop();
    });

    // Without an 'error' listener ws would throw; the 'close' that follows retries.
    socket.on('error', (err) => {
      console.error(`connection error: ${err.message}`);
    });

    socket.on('close', (code) => {
      socket = null;
      if (stopping) return;
      const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 30));
      // Equal jitter: many clients dropped together do not all come back at once.
      const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
      attempt += 1;
      console.error(`disconnected (code ${code}); reconnecting in ${delay} ms`);
      retryTimer = setTimeout(connect, delay);
    });
  }

  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  connect();
}

main();
