// One WebSocket connection, the same for browsers (native WebSocket) and Node (the ws
// package, which, unlike a native WebSocket, shows the upgrade's HTTP status and the
// relay's pings): the client sees open, text frames, liveness and one close.

import { retryAfterMs } from "./backoff.js";

/** The relay refused the upgrade: its HTTP status and its JSON body's fields. */
export interface Refusal {
  status: number;
  error?: string;
  reason?: string;
  message?: string;
  /** its Retry-After header, ms (capped at 60 s); only where it can be seen (Node, not browsers) */
  retryAfterMs?: number;
}

/** What a connection tells its owner. onClose is called exactly once. */
export interface ConnectionHandlers {
  onOpen(): void;
  onText(text: string): void;
  /** any frame arrived, a ping included (where pings can be seen) */
  onAlive(): void;
  onClose(code: number, reason: string, refusal?: Refusal): void;
}

export interface Connection {
  send(text: string): void;
  close(code?: number, reason?: string): void;
  /** drops the connection without a closing handshake (a dead peer would never answer) */
  terminate(): void;
}

/** A browser-style WebSocket constructor (the global one, or one given in the options). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocket;

type WsModule = typeof import("ws");

let wsLoaded: Promise<WsModule["default"] | undefined> | undefined;

/** The ws package in Node, loaded once; undefined elsewhere (bundlers map it to nothing). */
function loadWs(): Promise<WsModule["default"] | undefined> {
  const isNode = typeof process !== "undefined" && typeof process.versions?.node === "string";
  wsLoaded ??= isNode
    ? import("ws").then((module) => module.default).catch(() => undefined)
    : Promise.resolve(undefined);
  return wsLoaded;
}

/** Opens a connection with `impl` if given, else ws in Node, else the global WebSocket. */
export async function openConnection(
  url: string,
  protocols: string[],
  handlers: ConnectionHandlers,
  impl?: WebSocketConstructor,
): Promise<Connection> {
  if (impl === undefined) {
    const ws = await loadWs();
    if (ws !== undefined) {
      return openWithWs(ws, url, protocols, handlers);
    }
  }
  const native = impl ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (native === undefined) {
    throw new Error("no WebSocket: install the ws package or pass options.WebSocket");
  }
  return openNative(native, url, protocols, handlers);
}

function once(handlers: ConnectionHandlers): ConnectionHandlers["onClose"] {
  let closed = false;
  return (code, reason, refusal) => {
    if (!closed) {
      closed = true;
      handlers.onClose(code, reason, refusal);
    }
  };
}

const CONNECTING = 0; // WebSocket.CONNECTING, which a polyfill's class may not define

function openNative(
  WebSocketImpl: WebSocketConstructor,
  url: string,
  protocols: string[],
  handlers: ConnectionHandlers,
): Connection {
  const socket = new WebSocketImpl(url, protocols);
  const closed = once(handlers);
  socket.onopen = () => handlers.onOpen();
  socket.onmessage = (event: MessageEvent) => {
    handlers.onAlive();
    if (typeof event.data === "string") {
      handlers.onText(event.data);
    }
  };
  socket.onclose = (event: CloseEvent) => closed(event.code, event.reason);
  socket.onerror = () => undefined; // a close event follows, with what can be known
  return {
    send: (text) => socket.send(text),
    close: (code, reason) => {
      // Closing a socket still connecting makes browsers log a warning: close it once open.
      if (socket.readyState === CONNECTING) {
        socket.onopen = () => socket.close(code, reason);
      } else {
        socket.close(code, reason);
      }
    },
    // A browser has no way to drop a socket at once: close it and stop listening.
    terminate: () => {
      socket.close();
      closed(1006, "terminated");
    },
  };
}

function openWithWs(
  WebSocketImpl: WsModule["default"],
  url: string,
  protocols: string[],
  handlers: ConnectionHandlers,
): Connection {
  const socket = new WebSocketImpl(url, protocols);
  const closed = once(handlers);
  let refusal: Refusal | undefined;
  socket.on("open", () => handlers.onOpen());
  socket.on("message", (data, isBinary) => {
    handlers.onAlive();
    if (!isBinary) {
      handlers.onText(data.toString());
    }
  });
  socket.on("ping", () => handlers.onAlive());
  socket.on("error", () => undefined); // a close event follows
  socket.on("close", (code, reason) => closed(code, reason.toString(), refusal));
  socket.on("unexpected-response", (_request, response) => {
    const chunks: Buffer[] = [];
    response.on("data", (chunk: Buffer) => chunks.push(chunk));
    response.on("end", () => {
      const retryAfter = retryAfterMs(response.headers["retry-after"]);
      refusal = {
        status: response.statusCode ?? 0,
        ...parseBody(Buffer.concat(chunks)),
        ...(retryAfter !== undefined ? { retryAfterMs: retryAfter } : {}),
      };
      socket.terminate();
    });
  });
  return {
    send: (text) => socket.send(text),
    close: (code, reason) => socket.close(code, reason),
    terminate: () => socket.terminate(),
  };
}

function parseBody(body: Buffer): Omit<Refusal, "status"> {
  try {
    const parsed: unknown = JSON.parse(body.toString());
    if (typeof parsed === "object" && parsed !== null) {
      const { error, reason, message } = parsed as Record<string, unknown>;
      return {
        ...(typeof error === "string" ? { error } : {}),
        ...(typeof reason === "string" ? { reason } : {}),
        ...(typeof message === "string" ? { message } : {}),
      };
    }
  } catch {
    // not JSON: the status says enough
  }
  const text = body.toString().trim();
  return text ? { message: text.slice(0, 200) } : {};
}
