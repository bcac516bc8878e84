// Runs examples/browser/pingpong.js outside a page, on Node's global (WHATWG) WebSocket.
//   node drive_browser_snippet.mjs PINGPONG_JS_PATH RELAY_URL COUNT
// Prints "connected to URL" on each connection, then each heartbeat as the page shows it.
import { pathToFileURL } from 'node:url';

const [modulePath, url, countText] = process.argv.slice(2);
if (typeof globalThis.WebSocket !== 'function') {
  console.error(`node ${process.version} has no global WebSocket (Node 22+ needed)`);
  process.exit(2);
}
const { watchRelay, formatHeartbeat } = await import(pathToFileURL(modulePath).href);
const count = Number(countText);
let received = 0;

const watcher = watchRelay(
  url,
  (heartbeat) => {
    console.log(formatHeartbeat(heartbeat));
    received += 1;
    if (received >= count) watcher.close();
  },
  {
    onStatus(state, detail) {
      if (state === 'connected') console.log(`connected to ${detail.url}`);
      else if (state === 'disconnected') {
        console.error(`disconnected (code ${detail.code}); reconnecting in ${detail.delayMs} ms`);
      }
    },
  },
);
