// pingpong-relay-client's browser build (global PingpongRelayClient), generated from clients/js/src by make dashboard-client; do not edit it.
"use strict";
var PingpongRelayClient = (() => {
  var __create = Object.create;
  var __defProp = Object.defineProperty;
  var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
  var __getOwnPropNames = Object.getOwnPropertyNames;
  var __getProtoOf = Object.getPrototypeOf;
  var __hasOwnProp = Object.prototype.hasOwnProperty;
  var __defNormalProp = (obj, key, value) => key in obj ? __defProp(obj, key, { enumerable: true, configurable: true, writable: true, value }) : obj[key] = value;
  var __commonJS = (cb, mod) => function __require() {
    try {
      return mod || (0, cb[__getOwnPropNames(cb)[0]])((mod = { exports: {} }).exports, mod), mod.exports;
    } catch (e) {
      throw mod = 0, e;
    }
  };
  var __export = (target, all) => {
    for (var name in all)
      __defProp(target, name, { get: all[name], enumerable: true });
  };
  var __copyProps = (to, from, except, desc) => {
    if (from && typeof from === "object" || typeof from === "function") {
      for (let key of __getOwnPropNames(from))
        if (!__hasOwnProp.call(to, key) && key !== except)
          __defProp(to, key, { get: () => from[key], enumerable: !(desc = __getOwnPropDesc(from, key)) || desc.enumerable });
    }
    return to;
  };
  var __toESM = (mod, isNodeMode, target) => (target = mod != null ? __create(__getProtoOf(mod)) : {}, __copyProps(
    // If the importer is in node compatibility mode or this is not an ESM
    // file that has been converted to a CommonJS file using a Babel-
    // compatible transform (i.e. "__esModule" has not been set), then set
    // "default" to the CommonJS "module.exports" for node compatibility.
    isNodeMode || !mod || !mod.__esModule ? __defProp(target, "default", { value: mod, enumerable: true }) : target,
    mod
  ));
  var __toCommonJS = (mod) => __copyProps(__defProp({}, "__esModule", { value: true }), mod);
  var __publicField = (obj, key, value) => __defNormalProp(obj, typeof key !== "symbol" ? key + "" : key, value);

  // (disabled):node_modules/ws/browser.js
  var require_browser = __commonJS({
    "(disabled):node_modules/ws/browser.js"() {
    }
  });

  // src/index.ts
  var index_exports = {};
  __export(index_exports, {
    BOT_MESSAGE_RULES: () => BOT_MESSAGE_RULES,
    CLOSE_CODES: () => CLOSE_CODES,
    Heartbeat: () => Heartbeat,
    HeartbeatError: () => HeartbeatError,
    MAX_RETRY_AFTER_MS: () => MAX_RETRY_AFTER_MS,
    RelayClient: () => RelayClient,
    RelayClientError: () => RelayClientError,
    ResumePoint: () => ResumePoint,
    SOURCE_PATTERN: () => SOURCE_PATTERN,
    UPGRADE_STATUSES: () => UPGRADE_STATUSES,
    backoffDelayMs: () => backoffDelayMs,
    compareIds: () => compareIds,
    publishHeartbeat: () => publishHeartbeat,
    retryAfterMs: () => retryAfterMs,
    validateHeartbeat: () => validateHeartbeat
  });

  // src/backoff.ts
  var DEFAULT_BACKOFF = { initialMs: 500, maxMs: 2e4 };
  function backoffDelayMs(attempt, options = {}, random = Math.random) {
    const initial = options.initialMs ?? DEFAULT_BACKOFF.initialMs;
    const max = options.maxMs ?? DEFAULT_BACKOFF.maxMs;
    const cap = Math.min(max, initial * 2 ** Math.max(0, attempt));
    return random() * cap;
  }
  var MAX_RETRY_AFTER_MS = 6e4;
  function retryAfterMs(header) {
    if (header === void 0 || !/^\s*\d+(\.\d+)?\s*$/.test(header)) {
      return void 0;
    }
    return Math.min(Number(header) * 1e3, MAX_RETRY_AFTER_MS);
  }
  function parseId(id) {
    const match = /^(\d+)-(\d+)$/.exec(id);
    return match ? [Number(match[1]), Number(match[2])] : void 0;
  }
  function compareIds(a, b) {
    const left = parseId(a);
    const right = parseId(b);
    if (left === void 0 || right === void 0) {
      throw new TypeError(`not a history id: ${left === void 0 ? a : b}`);
    }
    return Math.sign(left[0] - right[0]) || Math.sign(left[1] - right[1]);
  }
  var ResumePoint = class {
    /** `since`: where an earlier session left off (its last id; the relay replays it again). */
    constructor(since) {
      __publicField(this, "newest");
      __publicField(this, "newestByBot", /* @__PURE__ */ new Map());
      __publicField(this, "resumedFrom");
      this.newest = since;
      this.resumedFrom = since;
    }
    /** The id to resume from (the relay replays from it inclusive), if any. */
    get since() {
      return this.newest;
    }
    /** Records an envelope's id; false when it was seen before (an id ≤ its bot's newest). */
    accept(bot, id) {
      const last = this.newestByBot.get(bot);
      if (last !== void 0 ? compareIds(id, last) <= 0 : id === this.resumedFrom) {
        return false;
      }
      this.newestByBot.set(bot, id);
      const newest = this.newest;
      if (newest === void 0 || !/^\d+-\d+$/.test(newest) || compareIds(id, newest) > 0) {
        this.newest = id;
      }
      return true;
    }
  };

  // src/emitter.ts
  var Emitter = class {
    constructor() {
      __publicField(this, "listeners", /* @__PURE__ */ new Map());
    }
    /** Calls `handler` for each `name` event; returns a function that removes it. */
    on(name, handler) {
      let set = this.listeners.get(name);
      if (set === void 0) {
        set = /* @__PURE__ */ new Set();
        this.listeners.set(name, set);
      }
      set.add(handler);
      return () => this.off(name, handler);
    }
    off(name, handler) {
      this.listeners.get(name)?.delete(handler);
    }
    listenerCount(name) {
      return this.listeners.get(name)?.size ?? 0;
    }
    /** Calls each handler; one that throws does not stop the others, nor the client. */
    emit(name, value) {
      for (const handler of [...this.listeners.get(name) ?? []]) {
        try {
          handler(value);
        } catch (error) {
          console.error(`pingpong-relay-client: a ${String(name)} handler threw:`, error);
        }
      }
    }
  };

  // src/queue.ts
  var EnvelopeQueue = class {
    /** `detach`: called once when the iteration ends, however it ends. */
    constructor(detach) {
      __publicField(this, "detach", detach);
      __publicField(this, "items", []);
      __publicField(this, "ended", false);
      __publicField(this, "failure");
      __publicField(this, "wake");
    }
    push(item) {
      this.items.push(item);
      this.wake?.();
    }
    /** Ends the iteration: at once with `discard`, else once what is buffered has been read. */
    end(discard = false) {
      this.ended = true;
      if (discard) {
        this.items.length = 0;
      }
      this.wake?.();
    }
    /** Ends the iteration with an error, once what is buffered has been read. */
    fail(error) {
      this.failure = error;
      this.end();
    }
    async next() {
      while (this.items.length === 0 && !this.ended) {
        await new Promise((resolve) => {
          this.wake = resolve;
        });
        this.wake = void 0;
      }
      if (this.items.length > 0) {
        return { value: this.items.shift(), done: false };
      }
      this.detach();
      if (this.failure !== void 0) {
        const failure = this.failure;
        this.failure = void 0;
        throw failure;
      }
      return { value: void 0, done: true };
    }
    async return() {
      this.ended = true;
      this.items.length = 0;
      this.detach();
      return { value: void 0, done: true };
    }
  };

  // src/socket.ts
  var wsLoaded;
  function loadWs() {
    const isNode = typeof process !== "undefined" && typeof process.versions?.node === "string";
    wsLoaded ?? (wsLoaded = isNode ? Promise.resolve().then(() => __toESM(require_browser(), 1)).then((module) => module.default).catch(() => void 0) : Promise.resolve(void 0));
    return wsLoaded;
  }
  async function openConnection(url, protocols, handlers, impl) {
    if (impl === void 0) {
      const ws = await loadWs();
      if (ws !== void 0) {
        return openWithWs(ws, url, protocols, handlers);
      }
    }
    const native = impl ?? globalThis.WebSocket;
    if (native === void 0) {
      throw new Error("no WebSocket: install the ws package or pass options.WebSocket");
    }
    return openNative(native, url, protocols, handlers);
  }
  function once(handlers) {
    let closed = false;
    return (code, reason, refusal) => {
      if (!closed) {
        closed = true;
        handlers.onClose(code, reason, refusal);
      }
    };
  }
  var CONNECTING = 0;
  function openNative(WebSocketImpl, url, protocols, handlers) {
    const socket = new WebSocketImpl(url, protocols);
    const closed = once(handlers);
    socket.onopen = () => handlers.onOpen();
    socket.onmessage = (event) => {
      handlers.onAlive();
      if (typeof event.data === "string") {
        handlers.onText(event.data);
      }
    };
    socket.onclose = (event) => closed(event.code, event.reason);
    socket.onerror = () => void 0;
    return {
      send: (text) => socket.send(text),
      close: (code, reason) => {
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
      }
    };
  }
  function openWithWs(WebSocketImpl, url, protocols, handlers) {
    const socket = new WebSocketImpl(url, protocols);
    const closed = once(handlers);
    let refusal;
    socket.on("open", () => handlers.onOpen());
    socket.on("message", (data, isBinary) => {
      handlers.onAlive();
      if (!isBinary) {
        handlers.onText(data.toString());
      }
    });
    socket.on("ping", () => handlers.onAlive());
    socket.on("error", () => void 0);
    socket.on("close", (code, reason) => closed(code, reason.toString(), refusal));
    socket.on("unexpected-response", (_request, response) => {
      const chunks = [];
      response.on("data", (chunk) => chunks.push(chunk));
      response.on("end", () => {
        const retryAfter = retryAfterMs(response.headers["retry-after"]);
        refusal = {
          status: response.statusCode ?? 0,
          ...parseBody(Buffer.concat(chunks)),
          ...retryAfter !== void 0 ? { retryAfterMs: retryAfter } : {}
        };
        socket.terminate();
      });
    });
    return {
      send: (text) => socket.send(text),
      close: (code, reason) => socket.close(code, reason),
      terminate: () => socket.terminate()
    };
  }
  function parseBody(body) {
    try {
      const parsed = JSON.parse(body.toString());
      if (typeof parsed === "object" && parsed !== null) {
        const { error, reason, message } = parsed;
        return {
          ...typeof error === "string" ? { error } : {},
          ...typeof reason === "string" ? { reason } : {},
          ...typeof message === "string" ? { message } : {}
        };
      }
    } catch {
    }
    const text = body.toString().trim();
    return text ? { message: text.slice(0, 200) } : {};
  }

  // src/client.ts
  var RelayClientError = class extends Error {
    constructor(message, code, status, closeCode) {
      super(message);
      __publicField(this, "code", code);
      __publicField(this, "status", status);
      __publicField(this, "closeCode", closeCode);
      this.name = "RelayClientError";
    }
  };
  var PROBE_ID = "pingpong-relay-client:probe";
  var FINAL_STATUSES = /* @__PURE__ */ new Set([400, 401, 403, 404]);
  var FINAL_CLOSE_CODES = /* @__PURE__ */ new Set([1002, 4003]);
  var RelayClient = class extends Emitter {
    constructor(url, options = {}) {
      super();
      __publicField(this, "url");
      __publicField(this, "options");
      __publicField(this, "filter");
      __publicField(this, "token");
      __publicField(this, "resume");
      __publicField(this, "connection");
      __publicField(this, "isOpen", false);
      __publicField(this, "stopped", false);
      // by close() or by a refusal (until setToken)
      __publicField(this, "closedByUser", false);
      __publicField(this, "attempt", 0);
      __publicField(this, "commandCount", 0);
      __publicField(this, "pending", /* @__PURE__ */ new Map());
      __publicField(this, "queues", /* @__PURE__ */ new Set());
      __publicField(this, "retryTimer");
      __publicField(this, "idleTimer");
      this.url = url;
      this.options = options;
      this.token = options.token;
      this.filter = { ...pick(options) };
      this.resume = options.resume === false ? void 0 : new ResumePoint(options.since);
      this.connect();
    }
    /** The last history id delivered (with resume): keep it to resume a later session. */
    get lastId() {
      return this.resume?.since;
    }
    get connected() {
      return this.isOpen;
    }
    /** Widens (or narrows) what the relay sends; resolves with the relay's ack. */
    subscribe(filter) {
      return this.command({ action: "subscribe", ...pick(filter) });
    }
    unsubscribe(filter) {
      return this.command({ action: "unsubscribe", ...pick(filter) });
    }
    /** The subscription and every bot the relay has seen. */
    list() {
      return this.command({ action: "list" });
    }
    /**
     * Replaces the token: in-band (the relay's refresh command) when connected, kept only
     * when the relay acks it; else for the next connection; after a refusal, connects with it.
     */
    async setToken(token) {
      if (this.isOpen) {
        try {
          const ack = await this.command({ action: "refresh", token });
          this.token = token;
          return ack;
        } catch (error) {
          if (error instanceof RelayClientError && error.code === "closed") {
            this.token = token;
          }
          throw error;
        }
      }
      const changed = token !== this.token;
      this.token = token;
      if (this.stopped && !this.closedByUser && changed) {
        this.stopped = false;
        this.attempt = 0;
        this.connect();
      }
      return void 0;
    }
    /**
     * While waiting to reconnect, tries at once and starts the backoff over (say, a user's
     * "reconnect now", or a browser back online). Whether an attempt was started.
     */
    reconnectNow() {
      if (this.retryTimer === void 0 || this.stopped) {
        return false;
      }
      clearTimeout(this.retryTimer);
      this.retryTimer = void 0;
      this.attempt = 0;
      this.connect();
      return true;
    }
    /** Closes the connection for good; iterations end at once (what they buffered is dropped). */
    close() {
      if (this.closedByUser) {
        return;
      }
      this.closedByUser = this.stopped = true;
      clearTimeout(this.retryTimer);
      clearTimeout(this.idleTimer);
      this.connection?.close(1e3, "client closed");
      this.endQueues();
    }
    [Symbol.asyncIterator]() {
      const queue = new EnvelopeQueue(() => this.queues.delete(queue));
      if (this.stopped) {
        queue.end();
      } else {
        this.queues.add(queue);
      }
      return queue;
    }
    // --- connecting -------------------------------------------------------------------------
    connect() {
      if (this.closedByUser) {
        return;
      }
      const url = this.connectUrl();
      const protocols = ["pingpong.v1", ...this.token ? [`bearer.${this.token}`] : []];
      const attempt = this.attempt;
      openConnection(url, protocols, {
        onOpen: () => this.opened(url, attempt),
        onText: (text) => this.received(text),
        onAlive: () => this.alive(),
        onClose: (code, reason, refusal) => this.lost(code, reason, refusal)
      }, this.options.WebSocket).then(
        (connection) => {
          this.connection = connection;
          if (this.closedByUser) {
            connection.close(1e3, "client closed");
          }
        },
        (error) => this.fail(new RelayClientError(String(error), "no_websocket"))
      );
    }
    connectUrl() {
      const url = new URL(this.url);
      for (const key of ["types", "bots", "events"]) {
        const values = this.filter[key];
        if (values !== void 0) {
          url.searchParams.set(key, values.join(","));
        }
      }
      if (this.resume !== void 0) {
        url.searchParams.set("ids", "1");
        const since = this.resume.since;
        if (since !== void 0) {
          url.searchParams.set("since", since);
        }
      }
      return url.toString();
    }
    opened(url, attempt) {
      this.isOpen = true;
      this.attempt = 0;
      this.alive();
      this.emit("open", { url, attempt });
    }
    lost(code, reason, refusal) {
      this.connection = void 0;
      this.isOpen = false;
      clearTimeout(this.idleTimer);
      for (const [id, pending] of this.pending) {
        pending.reject(new RelayClientError("the connection closed", "closed"));
        this.pending.delete(id);
      }
      if (this.closedByUser) {
        this.emit("close", { code, reason, retryInMs: null });
        return;
      }
      const final = refusal !== void 0 ? FINAL_STATUSES.has(refusal.status) : FINAL_CLOSE_CODES.has(code);
      if (final) {
        this.emit("close", { code, reason, retryInMs: null });
        this.fail(refusalError(code, reason, refusal));
        return;
      }
      const delay = Math.max(
        backoffDelayMs(this.attempt++, this.options.backoff, this.options.random),
        refusal?.retryAfterMs ?? 0
      );
      this.retryTimer = setTimeout(() => {
        this.retryTimer = void 0;
        this.connect();
      }, delay);
      this.emit("close", { code, reason: refusal ? `HTTP ${refusal.status}` : reason, retryInMs: delay });
    }
    /** Stops without retrying (until setToken gives another token) and says why. */
    fail(error) {
      this.stopped = true;
      this.emit("error", error);
      for (const queue of this.queues) {
        queue.fail(error);
      }
      this.queues.clear();
    }
    endQueues() {
      for (const queue of this.queues) {
        queue.end(true);
      }
      this.queues.clear();
    }
    // --- liveness: the relay pings, but a browser cannot see pings, so frames count ----------
    alive() {
      clearTimeout(this.idleTimer);
      const idleMs = this.options.idleTimeoutMs ?? 3e4;
      if (idleMs > 0 && this.isOpen) {
        this.idleTimer = setTimeout(() => this.probe(), idleMs);
      }
    }
    probe() {
      this.connection?.send(JSON.stringify({ action: "list", id: PROBE_ID }));
      this.idleTimer = setTimeout(
        () => this.connection?.terminate(),
        this.options.probeTimeoutMs ?? 1e4
      );
    }
    // --- receiving ---------------------------------------------------------------------------
    received(text) {
      let message;
      try {
        message = JSON.parse(text);
      } catch {
        return;
      }
      switch (message.type) {
        case "bot:pingpong":
          return this.envelope(message);
        case "bot:gap":
          return this.emit("gap", message);
        case "bot:status":
        case "relay:deaf":
          return this.emit("status", message);
        case "bot:alert":
          return this.emit("alert", message);
        case "bot:stats":
          return this.emit("stats", message);
        case "relay:state":
          return this.emit("relay", message);
        case "ack":
        case "subscriptions":
        case "error":
          return this.reply(message);
        default:
          return void 0;
      }
    }
    envelope(envelope) {
      if (this.resume !== void 0 && "id" in envelope && envelope.id !== void 0) {
        if (!this.resume.accept(envelope.bot, envelope.id)) {
          return;
        }
      }
      this.emit("message", envelope);
      for (const queue of this.queues) {
        queue.push(envelope);
      }
    }
    // --- commands ----------------------------------------------------------------------------
    command(body) {
      const connection = this.connection;
      if (!this.isOpen || connection === void 0) {
        return Promise.reject(new RelayClientError("not connected", "not_connected"));
      }
      const id = `c${++this.commandCount}`;
      return new Promise((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        connection.send(JSON.stringify({ ...body, id }));
      });
    }
    reply(message) {
      const id = message.id === void 0 ? void 0 : String(message.id);
      const pending = id === void 0 ? void 0 : this.pending.get(id);
      if (pending === void 0 || id === void 0) {
        if (message.type === "error" && id !== PROBE_ID) {
          this.emit("error", new RelayClientError(message.message, message.error));
        }
        return;
      }
      this.pending.delete(id);
      if (message.type === "error") {
        pending.reject(new RelayClientError(message.message, message.error));
        return;
      }
      if (message.type === "ack" && message.subscription !== void 0) {
        const { types, bots, events } = message.subscription;
        this.filter = {
          ...types === "all" ? {} : { types },
          ...bots === "all" ? {} : { bots },
          events
        };
      }
      pending.resolve(message);
    }
  };
  function pick(filter) {
    const picked = {};
    if (filter.types !== void 0) picked.types = [...filter.types];
    if (filter.bots !== void 0) picked.bots = [...filter.bots];
    if (filter.events !== void 0) picked.events = [...filter.events];
    return picked;
  }
  function refusalError(code, reason, refusal) {
    if (refusal === void 0) {
      const what = code === 4003 ? "token_expired" : "protocol_error";
      return new RelayClientError(`the relay closed the connection: ${code} ${reason}`, what, void 0, code);
    }
    const why = [refusal.error, refusal.reason, refusal.message].filter(Boolean).join(": ");
    return new RelayClientError(
      `the relay refused the connection: HTTP ${refusal.status}${why ? ` (${why})` : ""}`,
      refusal.reason ?? refusal.error ?? "refused",
      refusal.status,
      code
    );
  }

  // src/protocol.ts
  var BOT_MESSAGE_RULES = { "types": ["ping", "pong"], "latency": { "min": 0, "max": 36e5 }, "timestamp": { "min": 0, "max": 1e13 } };
  var SOURCE_PATTERN = new RegExp("^[A-Za-z0-9_.:@/+-]{1,128}(?![\\s\\S])");
  var CLOSE_CODES = {
    1e3: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1006: "abnormal closure",
    1008: "policy violation",
    1009: "message too big",
    1011: "internal error",
    4001: "slow client",
    4003: "token expired"
  };
  var UPGRADE_STATUSES = {
    101: "Switching Protocols",
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    426: "Upgrade Required",
    429: "Too Many Requests",
    503: "Service Unavailable"
  };

  // src/bot.ts
  var DEFAULT_CHANNEL = "bot:pingpong";
  var MAX_MESSAGE_BYTES = 16384;
  var HeartbeatError = class extends Error {
    constructor(field, message) {
      super(`invalid heartbeat: ${field}: ${message}`);
      __publicField(this, "field", field);
      this.name = "HeartbeatError";
    }
  };
  function checkNumber(field, value) {
    if (value === void 0 || value === null) {
      return;
    }
    const { min, max } = BOT_MESSAGE_RULES[field];
    if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
      throw new HeartbeatError(field, `must be a number from ${min} to ${max}, not ${String(value)}`);
    }
  }
  function validateHeartbeat(message) {
    if (!BOT_MESSAGE_RULES.types.includes(message.type)) {
      throw new HeartbeatError("type", `must be one of ${BOT_MESSAGE_RULES.types.join(", ")}`);
    }
    checkNumber("latency", message.latency);
    checkNumber("timestamp", message.timestamp);
    const source = message.source;
    if (source !== void 0 && source !== null) {
      if (typeof source !== "string" || !SOURCE_PATTERN.test(source)) {
        throw new HeartbeatError("source", "must be 1-128 characters of A-Z a-z 0-9 _ . : @ / + -");
      }
    }
    return message;
  }
  function heartbeatPayload(input) {
    const message = validateHeartbeat({
      ...input.extra,
      type: input.type,
      ...input.latency !== void 0 ? { latency: input.latency } : {},
      timestamp: input.timestamp ?? Date.now(),
      ...input.source !== void 0 ? { source: input.source } : {}
    });
    const payload = JSON.stringify(message);
    const bytes = new TextEncoder().encode(payload).length;
    if (bytes > MAX_MESSAGE_BYTES) {
      throw new HeartbeatError("message", `${bytes} bytes, over the relay's ${MAX_MESSAGE_BYTES}`);
    }
    return payload;
  }
  async function publishHeartbeat(redis, input) {
    const payload = heartbeatPayload(input);
    return Number(await redis.publish(input.channel ?? DEFAULT_CHANNEL, payload));
  }
  var Heartbeat = class {
    constructor(redis, options) {
      __publicField(this, "redis", redis);
      __publicField(this, "options", options);
      __publicField(this, "timer");
      __publicField(this, "running", false);
      __publicField(this, "current");
    }
    /** One heartbeat now: times the ping, publishes it; resolves with the receivers. */
    async beat() {
      const started = performance.now();
      await this.options.ping();
      const latency = Math.round((performance.now() - started) * 10) / 10;
      const receivers = await publishHeartbeat(this.redis, {
        type: this.options.type ?? "pong",
        latency,
        ...this.options.source !== void 0 ? { source: this.options.source } : {},
        ...this.options.channel !== void 0 ? { channel: this.options.channel } : {}
      });
      this.options.onPublished?.(latency, receivers);
      return receivers;
    }
    /** Starts beating: one heartbeat at once, then one every intervalMs (never overlapping). */
    start() {
      if (this.running) {
        return;
      }
      this.running = true;
      this.tick();
    }
    /** Stops, and waits for a heartbeat under way. */
    async stop() {
      this.running = false;
      clearTimeout(this.timer);
      await this.current;
    }
    tick() {
      this.current = this.beat().then(
        () => void 0,
        (error) => (this.options.onError ?? reportError)(error)
      );
      void this.current.then(() => {
        if (this.running) {
          this.timer = setTimeout(() => this.tick(), this.options.intervalMs ?? 1e4);
        }
      });
    }
  };
  function reportError(error) {
    console.error("pingpong-relay-client: heartbeat failed:", error);
  }
  return __toCommonJS(index_exports);
})();
