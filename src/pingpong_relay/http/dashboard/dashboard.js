// pingpong-relay dashboard: one tile per bot, latency charts, alerts and the relay's own state.
//
// Plain ES2020 and no build step: the relay serves this file as it is. Everything comes from
// the relay: dashboard/config.json says where the WebSocket is and what it may ask; the HTTP
// endpoints (bots, alerts, history, analytics) fill in what was there before the page opened.
// The WebSocket is the relay's own client library, pingpong-relay-client (clients/js), whose
// browser build index.html loads first as vendor/pingpong-relay-client (the global
// PingpongRelayClient): it reconnects, resumes and types what this page receives.
//
// The pure logic (p95 over a trailing window, relative time, backoff, merge by id, …) is in
// small named functions at the top. They, and a read-only view of the charts, are exposed as
// `window.pingpongDashboard` for the browser tests and for debugging in the console:
//   pingpongDashboard.logic.<function>(…)      the pure functions below
//   pingpongDashboard.chartIds(botId)          history ids of the points a bot's chart plots
//   pingpongDashboard.chartPoints(botId)       [[relay ms, latency ms], …] of that chart
//   pingpongDashboard.chartLine(botId, series) the line drawn ('latency' or 'p95'): [[ms, value]],
//                                              with [ms, null] where it breaks
//   pingpongDashboard.chartTimeLabels(botId)   the time axis's labels as drawn
// The token is never written to the DOM, the console, or that hook.
(() => {
  'use strict';

  // --- settings -------------------------------------------------------------------------------
  const CHART_SPAN_MS = 15 * 60 * 1000; // a chart shows at most the last 15 minutes
  const MIN_VIEW_MS = 10 * 1000; // ... and at least 10 s, while a bot is younger than that
  const P95_WINDOW_MS = 60 * 1000; // the p95 line: trailing 60 s of the plotted latencies
  const GAP_FACTOR = 3; // a line breaks where points are 3x the bot's usual interval apart,
  const MIN_GAP_MS = 1000; // ... and at least this far apart
  const INTERVAL_SAMPLE = 1000; // the usual interval: the median of the latest intervals
  const TIME_STEPS_S = [1, 2, 3, 5, 10, 15, 20, 30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600];
  const TICK_GAP_PX = 8; // at least this much room between two time labels
  const TICK_EVERY_PX = 110; // a wider chart gets more time labels: about one per this many px
  const CHART_HEIGHT_REM = 8.8; // as .chart's height in dashboard.css
  const REDRAW_EVERY_MS = 250; // charts and tile text are redrawn in batches, not per message
  const SLIDE_EVERY_MS = 5000; // every chart moves on (and drops old points) this often
  const ANALYTICS_EVERY_MS = 60 * 1000;
  const BACKOFF = { initialMs: 1000, maxMs: 30 * 1000 }; // full jitter, as protocol.md advises
  const HISTORY_PAGE = 10000;
  const HISTORY_MAX_PAGES = 30;
  const MAX_PENDING_BEATS = 50000;
  const RESOLVED_SHOWN = 20;
  const ANNOUNCEMENTS_KEPT = 5;
  const TOKEN_KEY = 'pingpong-relay.token';
  const EVENTS = 'pingpong,status,alerts,stats,relay';
  const STATUSES = ['up', 'pending', 'degraded', 'down'];
  const CLOSE_REASONS = {
    1001: 'the relay is shutting down',
    1006: 'connection lost',
    1008: 'refused by the relay’s policy',
    1009: 'a message was too big',
    1011: 'relay error',
    4001: 'this page fell behind',
  };

  // --- pure logic -----------------------------------------------------------------------------

  /** The q-quantile (0…1) of numbers, by nearest rank; null when there are none. */
  function quantile(values, q) {
    if (values.length === 0) return null;
    const sorted = Float64Array.from(values).sort();
    const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
    return sorted[rank];
  }

  function p95(values) {
    return quantile(values, 0.95);
  }

  /**
   * The p95 of the points ({t, v}, oldest first) in the trailing window before each step
   * from fromMs to toMs: [{t, v}], a step being left out when its window holds no point.
   */
  function p95Series(points, fromMs, toMs, stepMs, windowMs) {
    const out = [];
    let lo = 0;
    let hi = 0;
    for (let t = Math.ceil(fromMs / stepMs) * stepMs; t <= toMs; t += stepMs) {
      while (hi < points.length && points[hi].t <= t) hi += 1;
      while (lo < hi && points[lo].t <= t - windowMs) lo += 1;
      if (hi > lo) out.push({ t, v: p95(points.slice(lo, hi).map((p) => p.v)) });
    }
    return out;
  }

  /** Finer p95 steps on a short chart, 5 s steps on a long one. */
  function p95StepMs(spanMs) {
    return spanMs <= 2 * 60 * 1000 ? 1000 : 5000;
  }

  /** "3 s ago", "4 min ago", "2 h 5 min ago", "3 d ago"; a future time counts as now. */
  function relativeTime(deltaMs) {
    if (typeof deltaMs !== 'number' || !Number.isFinite(deltaMs)) return '—';
    const seconds = Math.max(0, Math.floor(deltaMs / 1000));
    if (seconds < 60) return `${seconds} s ago`;
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return `${minutes} min ago`;
    const hours = Math.floor(minutes / 60);
    if (hours < 48) return minutes % 60 ? `${hours} h ${minutes % 60} min ago` : `${hours} h ago`;
    return `${Math.floor(hours / 24)} d ago`;
  }

  /** "45 s", "12 min", "3 h 4 min", "2 d 3 h". */
  function formatDuration(totalSeconds) {
    if (typeof totalSeconds !== 'number' || !Number.isFinite(totalSeconds)) return '—';
    const s = Math.max(0, Math.floor(totalSeconds));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min`;
    const h = Math.floor(m / 60);
    if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
    const d = Math.floor(h / 24);
    return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
  }

  /**
   * Milliseconds before retry number `attempt` (0 first): the client library's full jitter,
   * uniform in [0, min(30 s, 1 s * 2^attempt)), so that pages spread out.
   */
  function backoffDelay(attempt, random = Math.random) {
    return Math.round(PingpongRelayClient.backoffDelayMs(attempt, BACKOFF, random));
  }

  /** The milliseconds of a history id ("1795662100245-0"), or null. */
  function idMs(id) {
    if (typeof id !== 'string') return null;
    const ms = Number(id.split('-', 1)[0]);
    return Number.isFinite(ms) ? ms : null;
  }

  function compareIds(a, b) {
    if (a === b) return 0;
    if (a == null) return -1;
    if (b == null) return 1;
    const [am, as = '0'] = a.split('-');
    const [bm, bs = '0'] = b.split('-');
    return Number(am) - Number(bm) || Number(as) - Number(bs);
  }

  /** Points ({id, t, v}) of both lists, oldest first, each id once (id-less ones all kept). */
  function mergeById(existing, incoming) {
    const seen = new Set();
    const out = [];
    for (const point of [...existing, ...incoming]) {
      if (point.id != null) {
        if (seen.has(point.id)) continue;
        seen.add(point.id);
      }
      out.push(point);
    }
    return out.sort((a, b) => a.t - b.t || compareIds(a.id, b.id));
  }

  /** The points at or after cutoffMs (points are oldest first). */
  function trimOlderThan(points, cutoffMs) {
    let first = 0;
    while (first < points.length && points[first].t < cutoffMs) first += 1;
    return first === 0 ? points : points.slice(first);
  }

  /**
   * Pings and pongs: the analytics' counts (messages up to its to_ms) plus the live beats
   * ({ms, type}, ms from the history id) that came after it.
   */
  function countBeats(base, beats) {
    const counts = { ping: base.ping, pong: base.pong };
    for (const beat of beats) {
      if (beat.ms > base.toMs && (beat.type === 'ping' || beat.type === 'pong')) {
        counts[beat.type] += 1;
      }
    }
    return counts;
  }

  /**
   * What a tile keeps of an /analytics answer: the relay's availability at to_ms, and what
   * availabilityNow needs to bring it forward; null when the relay has no figure yet.
   */
  function availabilityFrom(body) {
    if (!body || typeof body.availability_pct !== 'number') return null;
    const outages = Array.isArray(body.outages) ? body.outages : [];
    return {
      pct: body.availability_pct,
      fromMs: body.from_ms,
      toMs: body.to_ms,
      observedFromMs: body.observed_from_ms ?? body.from_ms,
      ongoing: outages.some((outage) => outage && outage.ongoing === true),
    };
  }

  /**
   * The relay's availability `a` (from availabilityFrom) at nowMs, by the relay's own rule, so
   * that a tile need not ask every second: the observed time grows with the clock, and while
   * the outage the relay reported is ongoing the silence grows with it, until resumedMs (the
   * bot's first heartbeat since, if any). Times in the relay's clock.
   */
  function availabilityNow(a, nowMs, resumedMs = null) {
    if (!a) return null;
    const { pct, fromMs, toMs, observedFromMs } = a;
    if (![fromMs, toMs, observedFromMs, nowMs].every(Number.isFinite) || nowMs <= toMs) return pct;
    const observedThen = toMs - observedFromMs;
    const observedNow = nowMs - Math.max(nowMs - (toMs - fromMs), observedFromMs);
    if (observedThen <= 0 || observedNow <= 0) return pct;
    let silentMs = observedThen * (1 - pct / 100);
    if (a.ongoing) silentMs += Math.max(0, Math.min(nowMs, resumedMs ?? nowMs) - toMs);
    return 100 * (1 - Math.min(silentMs, observedNow) / observedNow);
  }

  /** The time of the first beat ({ms}, oldest first) after ms, or null. */
  function firstBeatAfter(beats, ms) {
    for (const beat of beats) if (beat.ms > ms) return beat.ms;
    return null;
  }

  /** Where the x axis starts: 15 min back at most, the bot's first point (padded) at least. */
  function chartStart(firstMs, nowMs) {
    const padded = firstMs - Math.max(1000, (nowMs - firstMs) * 0.05);
    return Math.max(nowMs - CHART_SPAN_MS, Math.min(padded, nowMs - MIN_VIEW_MS));
  }

  /**
   * How far apart two points ({t}, oldest first) may be before the line between them breaks:
   * GAP_FACTOR times the bot's usual interval (as the relay's silence rule has it), at least
   * MIN_GAP_MS; fallbackMs (the relay's silence timeout) while there are too few to tell.
   */
  function gapThresholdMs(points, fallbackMs) {
    if (points.length < 3) return fallbackMs;
    const intervals = [];
    for (let i = Math.max(1, points.length - INTERVAL_SAMPLE); i < points.length; i += 1) {
      intervals.push(points[i].t - points[i - 1].t);
    }
    return Math.max(MIN_GAP_MS, GAP_FACTOR * quantile(intervals, 0.5));
  }

  /**
   * The silences in points ({t}, oldest first): {from, to} between two points more than gapMs
   * apart, and {from, to: null} after the last one when nowMs is more than gapMs past it.
   */
  function findGaps(points, gapMs, nowMs) {
    const gaps = [];
    for (let i = 1; i < points.length; i += 1) {
      const [before, after] = [points[i - 1].t, points[i].t];
      if (after - before > gapMs) gaps.push({ from: before, to: after });
    }
    const last = points[points.length - 1];
    if (last && nowMs - last.t > gapMs) gaps.push({ from: last.t, to: null });
    return gaps;
  }

  /**
   * uPlot's aligned data: [x seconds, latency, p95], x ascending. A value a series has not at
   * some x is undefined, which uPlot steps over; inside a gap (findGaps) both are null, which
   * breaks both lines (their spanGaps is off), an x being added mid-gap if none falls there.
   */
  function chartData(points, p95Points, gaps = []) {
    const xs = [];
    const latency = [];
    const p95s = [];
    const push = (t, v, p) => {
      xs.push(t / 1000);
      latency.push(v);
      p95s.push(p);
    };
    let i = 0;
    let j = 0;
    let g = 0;
    let marked = false; // gap g has a null already
    while (i < points.length || j < p95Points.length) {
      const a = points[i];
      const b = p95Points[j];
      let t;
      let v;
      let p;
      if (b === undefined || (a !== undefined && a.t < b.t)) {
        [t, v] = [a.t, a.v];
        i += 1;
      } else if (a === undefined || b.t < a.t) {
        [t, p] = [b.t, b.v];
        j += 1;
      } else {
        [t, v, p] = [a.t, a.v, b.v];
        i += 1;
        j += 1;
      }
      while (g < gaps.length && gaps[g].to !== null && gaps[g].to <= t) {
        if (!marked) push((gaps[g].from + gaps[g].to) / 2, null, null);
        g += 1;
        marked = false;
      }
      if (g < gaps.length && t > gaps[g].from) {
        push(t, null, null);
        marked = true;
      } else {
        push(t, v, p);
      }
    }
    return [xs, latency, p95s];
  }

  /**
   * The ticks of a time axis from fromMs to toMs, widthPx wide: {stepMs, ticks: [ms]}. Steps are
   * round (TIME_STEPS_S) and ticks fall on round local times (offsetMs: the time zone's offset
   * from UTC). The coarsest step that gives at least 3 ticks (more on a wide chart) with room
   * for their labels (labelPx(withSeconds) wide, TICK_GAP_PX apart); the finest with room else.
   */
  function timeTicks(fromMs, toMs, widthPx, labelPx, offsetMs = 0) {
    const spanMs = toMs - fromMs;
    if (!(spanMs > 0) || !(widthPx > 0)) return { stepMs: 0, ticks: [] };
    const wanted = Math.min(8, Math.max(3, Math.round(widthPx / TICK_EVERY_PX)));
    let chosen = null;
    for (let k = TIME_STEPS_S.length - 1; k >= 0; k -= 1) {
      const stepMs = TIME_STEPS_S[k] * 1000;
      const roomPx = (stepMs / spanMs) * widthPx;
      if (chosen && roomPx < labelPx(stepMs < 60000) + TICK_GAP_PX) break;
      const ticks = [];
      const first = Math.ceil((fromMs + offsetMs) / stepMs) * stepMs - offsetMs;
      for (let t = first; t <= toMs; t += stepMs) ticks.push(t);
      chosen = { stepMs, ticks };
      if (ticks.length >= wanted) break;
    }
    return chosen;
  }

  /** An IPv6 address goes in brackets in a URL; location.hostname may have them already. */
  function hostForUrl(hostname) {
    return hostname.includes(':') && !hostname.startsWith('[') ? `[${hostname}]` : hostname;
  }

  /** config.ws_url if set, else ws(s)://<this page's host>:<ws_port>/, with our query. */
  function websocketUrl(config, pageLocation) {
    const base =
      config.ws_url ||
      `${config.ws_scheme === 'wss' ? 'wss' : 'ws'}://` +
        `${hostForUrl(pageLocation.hostname || 'localhost')}:${config.ws_port}/`;
    const url = new URL(base, pageLocation.href);
    url.searchParams.set('events', EVENTS);
    url.searchParams.set('ids', '1');
    return url.toString();
  }

  /** "14:03" or, with seconds, "14:03:27" (this browser's time zone). */
  function clockText(ms, withSeconds) {
    const date = new Date(ms);
    const two = (n) => String(n).padStart(2, '0');
    const text = `${two(date.getHours())}:${two(date.getMinutes())}`;
    return withSeconds ? `${text}:${two(date.getSeconds())}` : text;
  }

  function formatMs(value) {
    if (typeof value !== 'number' || !Number.isFinite(value)) return '—';
    return value >= 100 ? `${Math.round(value)} ms` : `${value.toFixed(1)} ms`;
  }

  function formatPct(value) {
    if (typeof value !== 'number' || !Number.isFinite(value)) return '—';
    if (value >= 100) return '100 %';
    return `${(Math.floor(value * 100) / 100).toFixed(2)} %`;
  }

  const countFormat = new Intl.NumberFormat('en-US');
  function formatCount(value) {
    return typeof value === 'number' && Number.isFinite(value) ? countFormat.format(value) : '—';
  }

  function formatRate(perSecond) {
    if (typeof perSecond !== 'number' || !Number.isFinite(perSecond)) return '—';
    if (perSecond >= 10) return `${Math.round(perSecond)}/s`;
    return `${perSecond.toFixed(perSecond < 1 ? 2 : 1)}/s`;
  }

  function alertKey(alert) {
    return `${alert.rule}|${alert.bot}`;
  }

  // --- state ----------------------------------------------------------------------------------
  const app = {
    config: null,
    token: null,
    bots: new Map(), // bot id -> bot (see newBot)
    alerts: new Map(), // "rule|bot" -> the newest bot:alert seen for it
    alertSeq: 0,
    relay: null,
    relayReceivedAt: 0,
    overallRate: null,
    relayNote: '',
    clockOffsetMs: 0, // the relay's clock minus this browser's, from relay:state
    client: null, // the RelayClient (vendor/pingpong-relay-client) while one is wanted
    generation: 0, // bumped to abandon a connection attempt in flight
    connectionSerial: 0, // bumped on every successful open
    retryAt: 0, // when the client's next attempt is; 0 while none is waiting
    retryWhy: '',
  };

  function relayNow() {
    return Date.now() + app.clockOffsetMs;
  }

  const $ = (selector, root = document) => root.querySelector(selector);
  let tileSerial = 0;

  // --- announcements (the aria-live region) ---------------------------------------------------
  function announce(text) {
    const region = $('#announcer');
    const line = document.createElement('p');
    line.textContent = text;
    region.append(line);
    while (region.childElementCount > ANNOUNCEMENTS_KEPT) region.firstElementChild.remove();
  }

  // --- connection indicator -------------------------------------------------------------------
  function setConnection(state, text) {
    const indicator = $('#connection');
    indicator.dataset.state = state;
    $('[data-field="connection-text"]', indicator).textContent = text;
    $('#reconnect-now').hidden = !(state === 'closed' && app.retryAt);
  }

  function renderCountdown() {
    if (!app.retryAt) return;
    if (Date.now() >= app.retryAt) {
      setConnection('connecting', 'reconnecting…');
      return;
    }
    const seconds = Math.max(1, Math.ceil((app.retryAt - Date.now()) / 1000));
    const why = app.retryWhy ? ` (${app.retryWhy})` : '';
    setConnection('closed', `disconnected${why} — reconnecting in ${seconds} s`);
  }

  // --- HTTP -----------------------------------------------------------------------------------

  /** GET a JSON endpoint (relative URL); {status, body}; status 0 when unreachable. */
  async function apiGet(path) {
    const token = app.token;
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch(path, { headers, cache: 'no-store', credentials: 'omit' });
    } catch {
      return { status: 0, body: null };
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (response.status === 401 && token && token === app.token) {
      const why = (body && (body.message || body.error)) || 'unauthorized';
      askForToken(`The relay refused the token: ${why}.`);
    }
    return { status: response.status, body };
  }

  // --- token ----------------------------------------------------------------------------------
  function takeTokenFromAddressBar() {
    const url = new URL(window.location.href);
    if (!url.searchParams.has('token')) return null;
    const token = url.searchParams.get('token').trim();
    url.searchParams.delete('token');
    window.history.replaceState(window.history.state, '', url.pathname + url.search + url.hash);
    return token || null;
  }

  function storedToken() {
    try {
      return window.sessionStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  }

  function storeToken(token) {
    try {
      if (token) window.sessionStorage.setItem(TOKEN_KEY, token);
      else window.sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // Storage may be off (private mode): the token then lasts as long as the page.
    }
  }

  /** Stops everything and shows the token form, with why. */
  function askForToken(reason) {
    app.generation += 1;
    app.token = null;
    storeToken(null);
    closeClient();
    $('#auth').hidden = false;
    $('#token-reason').textContent = reason;
    $('#change-token').hidden = true;
    setConnection('closed', 'not connected — a token is needed');
  }

  function onTokenSubmitted(event) {
    event.preventDefault();
    const input = $('#token');
    const token = input.value.trim().replace(/^bearer\s+/i, ''); // pasted with its scheme
    input.value = '';
    if (!token) {
      $('#token-reason').textContent = 'Enter a token first.';
      input.focus();
      return;
    }
    app.token = token;
    storeToken(token);
    $('#token-reason').textContent = '';
    $('#auth').hidden = true;
    $('#change-token').hidden = false;
    $('#bots-heading').focus();
    resetData();
    connect();
  }

  // --- WebSocket: the relay's own client library ----------------------------------------------
  // PingpongRelayClient (vendor/pingpong-relay-client, built from clients/js) reconnects with
  // jittered backoff and resumes from the last heartbeat it delivered: what the relay's
  // history holds of an outage is replayed over the socket, each message once.
  function closeClient() {
    const client = app.client;
    app.client = null;
    app.retryAt = 0;
    if (client) client.close();
  }

  async function connect() {
    closeClient();
    const generation = (app.generation += 1);
    if (app.config.auth === 'jwt' && !app.token) {
      askForToken('');
      return;
    }
    setConnection('connecting', 'connecting…');
    if (app.config.auth === 'jwt') {
      // A refused upgrade shows in a browser only as close 1006: ask over HTTP first.
      await apiGet('bots');
      if (generation !== app.generation) return; // 401: the form is up; or superseded
    }
    const client = new PingpongRelayClient.RelayClient(websocketUrl(app.config, window.location), {
      token: app.token || undefined,
      backoff: BACKOFF,
    });
    app.client = client;
    let opened = false;
    // Events of a client this page has let go of (a new token, say) are not for it.
    const on = (name, handler) => client.on(name, (event) => app.client === client && handler(event));
    on('open', () => {
      opened = true;
      onOpen();
    });
    on('close', (event) => {
      onClose(event, opened);
      opened = false;
    });
    on('message', onHeartbeat);
    on('status', (message) => (message.type === 'relay:deaf' ? onDeaf(message) : onStatus(message)));
    on('alert', onAlert);
    on('stats', onStats);
    on('relay', onRelayState);
    on('error', onClientError);
  }

  function onOpen() {
    app.retryAt = 0;
    app.relayNote = ''; // the relay says again what still holds
    app.connectionSerial += 1;
    setConnection('open', 'connected');
    announce('Connected to the relay.');
    refetchAfterConnect();
  }

  /** The client's close event: retryInMs is when it tries again, null when it stopped. */
  function onClose({ code, retryInMs }, opened) {
    if (opened) announce('Disconnected from the relay. Reconnecting automatically.');
    app.relay = null;
    renderRelay();
    if (retryInMs === null) return; // stopped: its error event says why
    // A refused or failed upgrade is 1006 whatever the cause.
    app.retryWhy = opened ? CLOSE_REASONS[code] || `closed with code ${code}` : 'no answer';
    app.retryAt = Date.now() + retryInMs;
    renderCountdown();
    // A token refused at the upgrade looks the same: HTTP says so (and brings up the form).
    if (!opened && app.config.auth === 'jwt') apiGet('bots');
  }

  /** The client stopped (a token expired, a refusal), or the relay reported an error. */
  function onClientError(error) {
    if (error.code === 'token_expired') {
      askForToken('Your token expired. Enter a new one to go on.');
    } else if (error.code === 'no_websocket') {
      // A URL or subprotocol the browser will not even try (its words may hold the token).
      setConnection('closed', 'cannot connect: the WebSocket URL or the token is not valid');
    } else if (error.closeCode === undefined && error.status === undefined) {
      app.relayNote = `The relay reported an error: ${error.code}: ${error.message || ''}`;
      renderRelay();
    } else {
      setConnection('closed', `not connected: ${error.message}`);
    }
  }

  function reconnectNow() {
    if (app.client && app.client.reconnectNow()) {
      app.retryAt = 0;
      setConnection('connecting', 'reconnecting…');
    }
  }

  /** After every (re)connect: what may have been missed meanwhile. */
  async function refetchAfterConnect() {
    const serial = app.connectionSerial;
    await Promise.all([refetchBots(), refetchAlerts()]);
    if (serial !== app.connectionSerial) return;
    for (const bot of app.bots.values()) {
      if (bot.loadedFor === serial) continue;
      bot.loadedFor = serial;
      const last = bot.points.length ? bot.points[bot.points.length - 1].t : null;
      loadHistory(bot, last ?? relayNow() - CHART_SPAN_MS);
      loadAnalytics(bot);
    }
  }

  async function refetchBots() {
    const reply = await apiGet('bots');
    if (reply.status !== 200 || !reply.body || typeof reply.body.bots !== 'object') return;
    for (const [id, status] of Object.entries(reply.body.bots)) onStatus({ ...status, bot: id });
  }

  async function refetchAlerts() {
    const seqBefore = app.alertSeq;
    const reply = await apiGet('alerts');
    if (reply.status !== 200 || !reply.body) return;
    const next = new Map();
    const fetched = [...(reply.body.recently_resolved || []), ...(reply.body.active || [])];
    for (const alert of fetched) putNewer(next, { ...alert, seq: 0 });
    // Live events that came while the request was out are newer than its answer.
    for (const alert of app.alerts.values()) if (alert.seq > seqBefore) putNewer(next, alert);
    const wasFiring = new Set(
      [...app.alerts.values()].filter((a) => a.state === 'firing').map(alertKey),
    );
    app.alerts = next;
    const firing = [...next.values()].filter(
      (a) => a.state === 'firing' && !wasFiring.has(alertKey(a)),
    );
    if (firing.length === 1) announce(`Alert firing: ${firing[0].summary || alertKey(firing[0])}`);
    else if (firing.length > 1) announce(`${firing.length} alerts firing.`);
    renderAlerts();
  }

  function putNewer(alerts, alert) {
    if (typeof alert.rule !== 'string' || typeof alert.bot !== 'string') return;
    const key = alertKey(alert);
    const old = alerts.get(key);
    if (old && (old.at_ms ?? 0) > (alert.at_ms ?? 0)) return;
    if (alert.state === 'resolved' && alert.fired === false) alerts.delete(key);
    else alerts.set(key, alert);
  }

  // --- messages (the client's events) ----------------------------------------------------------
  function onHeartbeat(message) {
    const data = message.data && typeof message.data === 'object' ? message.data : {};
    const channel = (app.relay && app.relay.channels && app.relay.channels[0]) || 'bot:pingpong';
    let botId = data.source ? `${channel}/${data.source}` : channel; // as the relay names it
    if (typeof message.bot === 'string') botId = message.bot;
    const bot = ensureBot(botId);
    const at = typeof message.timestamp === 'number' ? message.timestamp : relayNow();
    const id = typeof message.id === 'string' ? message.id : null;
    bot.lastSeenMs = Math.max(bot.lastSeenMs ?? at, at);
    if (typeof data.latency === 'number' && Number.isFinite(data.latency)) {
      bot.latency = data.latency;
      addPoint(bot, { id, t: at, v: data.latency });
    }
    recordBeat(bot, data.type, idMs(id) ?? at);
    bot.textDirty = true;
  }

  function onStatus(message) {
    if (typeof message.bot !== 'string' || !STATUSES.includes(message.status)) return;
    const bot = ensureBot(message.bot);
    const at = typeof message.at_ms === 'number' ? message.at_ms : relayNow();
    if (at < bot.statusAt) return;
    const changed = bot.status !== null && bot.status !== message.status;
    bot.status = message.status;
    bot.statusAt = at;
    bot.statusReason = typeof message.reason === 'string' ? message.reason : '';
    if (typeof message.last_seen_ms === 'number') {
      bot.lastSeenMs = Math.max(bot.lastSeenMs ?? message.last_seen_ms, message.last_seen_ms);
    }
    renderStatus(bot);
    renderLastSeen(bot, relayNow());
    renderSummary();
    // Time down counts against availability from the moment it starts: ask the relay again.
    if (changed) loadAnalytics(bot);
  }

  function onAlert(alert) {
    if (typeof alert.rule !== 'string' || typeof alert.bot !== 'string') return;
    const key = alertKey(alert);
    const old = app.alerts.get(key);
    if (old && (old.at_ms ?? 0) > (alert.at_ms ?? 0)) return;
    app.alertSeq += 1;
    putNewer(app.alerts, { ...alert, seq: app.alertSeq });
    renderAlerts();
    const changed = !old || old.state !== alert.state;
    if (!changed || alert.repeat) return;
    const what = alert.summary || key;
    if (alert.state === 'firing') announce(`Alert firing: ${what}`);
    else if (alert.state === 'resolved' && alert.fired !== false) {
      announce(`Alert resolved: ${what}`);
    }
  }

  function onStats(message) {
    const windows = message.windows && typeof message.windows === 'object' ? message.windows : {};
    const minute = windows['1m'];
    if (!minute) return;
    if (message.bot === '*') {
      app.overallRate = minute.rate_per_s;
      renderRelay();
      return;
    }
    if (typeof message.bot !== 'string') return;
    const bot = ensureBot(message.bot);
    bot.stats = minute;
    bot.textDirty = true;
  }

  function onRelayState(message) {
    app.relay = message;
    app.relayReceivedAt = Date.now();
    if (typeof message.at_ms === 'number') app.clockOffsetMs = message.at_ms - Date.now();
    renderRelay();
  }

  function onDeaf(message) {
    const clock = (ms) => new Date(ms - app.clockOffsetMs).toLocaleTimeString();
    if (typeof message.from_ms !== 'number') return;
    app.relayNote =
      message.to_ms == null
        ? `The relay has heard nothing from Redis since ${clock(message.from_ms)}.`
        : `The relay could not hear Redis from ${clock(message.from_ms)} to ` +
          `${clock(message.to_ms)}: heartbeats from then may be missing.`;
    renderRelay();
  }

  // --- bots -----------------------------------------------------------------------------------
  function newBot(id) {
    return {
      id,
      status: null,
      statusAt: -Infinity,
      statusReason: '',
      lastSeenMs: null,
      latency: null,
      points: [], // {id, t: relay ms, v: latency ms}, oldest first
      ids: new Set(),
      view: [0, 0],
      base: { ping: 0, pong: 0, toMs: -Infinity }, // from analytics 24h
      beats: [], // live {ms, type} not yet in `base`
      availability: { '24h': null, '7d': null }, // from analytics, see availabilityFrom
      stats: null,
      element: null,
      fields: {},
      chart: null,
      dirty: true,
      textDirty: true,
      loadedFor: 0,
      historyBusy: false,
      analyticsBusy: false,
      analyticsAgain: false,
    };
  }

  function ensureBot(id) {
    let bot = app.bots.get(id);
    if (bot) return bot;
    bot = newBot(id);
    app.bots.set(id, bot);
    createTile(bot);
    renderSummary();
    bot.loadedFor = app.connectionSerial;
    loadHistory(bot, relayNow() - CHART_SPAN_MS);
    loadAnalytics(bot);
    return bot;
  }

  function resetData() {
    for (const bot of app.bots.values()) {
      if (bot.chart) bot.chart.destroy();
      if (resizer) resizer.unobserve(bot.fields.chart);
      bot.element.remove();
    }
    app.bots.clear();
    app.alerts.clear();
    renderAlerts();
    renderSummary();
  }

  function createTile(bot) {
    const tile = $('#tile-template').content.firstElementChild.cloneNode(true);
    tile.dataset.bot = bot.id;
    tileSerial += 1;
    const headingId = `bot-name-${tileSerial}`;
    const heading = $('.bot-name', tile);
    heading.id = headingId;
    heading.textContent = bot.id;
    $('article', tile).setAttribute('aria-labelledby', headingId);
    for (const field of tile.querySelectorAll('[data-field]')) {
      bot.fields[field.dataset.field] = field;
    }
    const since = app.config.history ? '24 h' : 'since this page opened';
    $('[data-label="pings"]', tile).textContent = `pings ${since}`;
    $('[data-label="pongs"]', tile).textContent = `pongs ${since}`;
    bot.element = tile;
    const list = $('#bots');
    const after = [...list.children].find((other) => other.dataset.bot > bot.id);
    list.insertBefore(tile, after || null);
    chartBoxes.set(bot.fields.chart, bot);
    if (resizer) resizer.observe(bot.fields.chart);
    renderStatus(bot);
    renderText(bot);
  }

  function addPoint(bot, point) {
    if (point.id != null) {
      if (bot.ids.has(point.id)) return;
      bot.ids.add(point.id);
    }
    const last = bot.points[bot.points.length - 1];
    bot.points.push(point);
    if (last && point.t < last.t) bot.points = mergeById(bot.points, []);
    bot.dirty = true;
  }

  function recordBeat(bot, type, ms) {
    if (type !== 'ping' && type !== 'pong') return;
    if (!app.config.history) {
      bot.base[type] += 1; // no analytics to start from: count what this page sees
      return;
    }
    bot.beats.push({ ms, type });
    if (bot.beats.length > MAX_PENDING_BEATS) {
      // Analytics has not answered for a long while; fold the oldest into the base.
      for (const beat of bot.beats.splice(0, MAX_PENDING_BEATS / 2)) {
        if (beat.ms > bot.base.toMs) bot.base[beat.type] += 1;
      }
    }
  }

  async function loadHistory(bot, sinceMs) {
    const box = bot.fields.chart;
    if (!app.config.history) {
      box.dataset.history = 'off';
      return;
    }
    if (bot.historyBusy) return;
    bot.historyBusy = true;
    box.dataset.history = 'loading';
    const found = [];
    let state = 'loaded';
    let after = null;
    let lastItem = null;
    for (let page = 0; page < HISTORY_MAX_PAGES; page += 1) {
      const query = new URLSearchParams({
        bot: bot.id,
        since: String(Math.max(0, Math.floor(sinceMs))),
        limit: String(HISTORY_PAGE),
      });
      if (after) query.set('after', after);
      const reply = await apiGet(`history?${query}`);
      if (reply.status !== 200 || !reply.body || !Array.isArray(reply.body.items)) {
        state = reply.body && reply.body.error === 'history_off' ? 'off' : 'error';
        break;
      }
      for (const item of reply.body.items) {
        const latency = item.data && item.data.latency;
        if (typeof item.relay_ms !== 'number') continue;
        lastItem = item;
        if (typeof latency === 'number' && Number.isFinite(latency)) {
          const id = typeof item.id === 'string' ? item.id : null;
          found.push({ id, t: item.relay_ms, v: latency });
        }
      }
      after = reply.body.next_after;
      if (!after) break;
    }
    if (!app.bots.has(bot.id)) return; // reset meanwhile
    if (found.length) {
      bot.points = trimOlderThan(mergeById(bot.points, found), relayNow() - CHART_SPAN_MS);
      bot.ids = new Set(bot.points.map((p) => p.id).filter((id) => id != null));
      const newest = bot.points[bot.points.length - 1];
      if (bot.latency === null && newest) bot.latency = newest.v;
    }
    if (lastItem) bot.lastSeenMs = Math.max(bot.lastSeenMs ?? lastItem.relay_ms, lastItem.relay_ms);
    bot.historyBusy = false;
    bot.dirty = true;
    bot.textDirty = true;
    box.dataset.history = state;
  }

  async function loadAnalytics(bot) {
    if (!app.config.history) return;
    if (bot.analyticsBusy) {
      bot.analyticsAgain = true; // its status changed meanwhile: ask again after this answer
      return;
    }
    bot.analyticsBusy = true;
    const ask = (window) => apiGet(`analytics?${new URLSearchParams({ bot: bot.id, window })}`);
    do {
      bot.analyticsAgain = false;
      const [day, week] = await Promise.all([ask('24h'), ask('7d')]);
      if (day.status === 200 && day.body) {
        bot.availability['24h'] = availabilityFrom(day.body);
        const messages = day.body.messages;
        if (messages && typeof messages.ping === 'number' && typeof messages.pong === 'number') {
          const toMs = typeof day.body.to_ms === 'number' ? day.body.to_ms : relayNow();
          bot.base = { ping: messages.ping, pong: messages.pong, toMs };
          bot.beats = bot.beats.filter((beat) => beat.ms > toMs);
        }
      }
      if (week.status === 200 && week.body) {
        bot.availability['7d'] = availabilityFrom(week.body);
      }
      bot.textDirty = true;
    } while (bot.analyticsAgain && app.bots.get(bot.id) === bot);
    bot.analyticsBusy = false;
  }

  function refreshAllAnalytics() {
    if (!app.client || !app.client.connected) return;
    for (const bot of app.bots.values()) loadAnalytics(bot);
  }

  // --- rendering ------------------------------------------------------------------------------
  function setText(element, text) {
    if (element && element.textContent !== text) element.textContent = text;
  }

  function renderStatus(bot) {
    const status = bot.status || 'unknown';
    bot.element.dataset.status = status;
    setText(bot.fields.status, status);
    const badge = bot.fields.status.parentElement;
    if (bot.statusReason) badge.title = bot.statusReason;
  }

  function renderLastSeen(bot, now) {
    const text = bot.lastSeenMs == null ? '—' : relativeTime(now - bot.lastSeenMs);
    setText(bot.fields['last-seen'], text);
  }

  function renderAvailability(bot, now) {
    for (const window of ['24h', '7d']) {
      const a = bot.availability[window];
      const resumed = a && a.ongoing ? firstBeatAfter(bot.beats, a.toMs) : null;
      setText(bot.fields[`availability-${window}`], formatPct(availabilityNow(a, now, resumed)));
    }
  }

  function renderText(bot) {
    bot.textDirty = false;
    const f = bot.fields;
    setText(f.latency, formatMs(bot.latency));
    const counts = countBeats(bot.base, bot.beats);
    setText(f.pings, formatCount(counts.ping));
    setText(f.pongs, formatCount(counts.pong));
    renderAvailability(bot, relayNow());
    const s = bot.stats;
    let rate = '';
    if (s) {
      const latency = s.latency_ms || {};
      rate = `1 min: ${formatRate(s.rate_per_s)}`;
      if (typeof latency.p50 === 'number') rate += ` · p50 ${formatMs(latency.p50)}`;
      if (typeof latency.p95 === 'number') rate += ` · p95 ${formatMs(latency.p95)}`;
      if (s.clock_skew_suspected) rate += ' · clock skew?';
    }
    setText(f.rate, rate);
    renderLastSeen(bot, relayNow());
  }

  function renderSummary() {
    const counts = { up: 0, pending: 0, degraded: 0, down: 0 };
    for (const bot of app.bots.values()) if (bot.status in counts) counts[bot.status] += 1;
    const total = app.bots.size;
    const parts = STATUSES.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`);
    const bots = `${total} bot${total === 1 ? '' : 's'}`;
    const summary = total ? `${bots} · ${parts.join(' · ') || 'no status yet'}` : 'no bots yet';
    setText($('#bots-summary'), summary);
    $('#bots-empty').hidden = total > 0;
  }

  /** The root font size: it grows on a wall screen, and the charts with it. */
  function remPx() {
    return parseFloat(getComputedStyle(document.documentElement).fontSize) || 15;
  }

  function chartHeight() {
    return Math.round(CHART_HEIGHT_REM * remPx());
  }

  const chartBoxes = new WeakMap(); // chart container -> bot
  const resizer =
    typeof ResizeObserver === 'function'
      ? new ResizeObserver((entries) => {
          for (const entry of entries) {
            const bot = chartBoxes.get(entry.target);
            if (!bot) continue;
            const width = Math.floor(entry.contentRect.width);
            const height = chartHeight();
            if (!bot.chart) {
              bot.dirty = true;
            } else if (width > 0 && (width !== bot.chart.width || height !== bot.chart.height)) {
              // Next frame, not inside the observer's own delivery.
              requestAnimationFrame(() => bot.chart && bot.chart.setSize({ width, height }));
            }
          }
        })
      : null;

  const clockWidths = new Map(); // axis font -> px of "00:00" and of "00:00:00"

  /** labelPx(withSeconds) for timeTicks: how wide a clock label is in `font`. */
  function clockLabelPx(font) {
    let widths = clockWidths.get(font);
    if (!widths) {
      const context = document.createElement('canvas').getContext('2d');
      context.font = font;
      widths = [context.measureText('00:00').width, context.measureText('00:00:00').width];
      clockWidths.set(font, widths);
    }
    return (withSeconds) => widths[withSeconds ? 1 : 0];
  }

  function chartOptions(bot, width) {
    const scale = remPx() / 15;
    const font = `${Math.round(11 * scale)}px system-ui, "DejaVu Sans", sans-serif`;
    const labelPx = clockLabelPx(font);
    let timeStepMs = 0;
    const axis = {
      stroke: '#9ba7b4',
      font,
      grid: { stroke: 'rgba(255,255,255,0.07)', width: 1 },
      ticks: { stroke: 'rgba(255,255,255,0.15)', width: 1, size: 4 },
    };
    return {
      width,
      height: chartHeight(),
      legend: { show: false },
      cursor: { show: false },
      select: { show: false },
      scales: {
        x: { time: true, range: () => [bot.view[0] / 1000, bot.view[1] / 1000] },
        y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.15 : 10] },
      },
      series: [
        {},
        {
          label: 'latency',
          stroke: '#58a6ff',
          width: 1.5,
          spanGaps: false, // nulls mark outages (chartData); undefined values are stepped over
          points: { size: 4, fill: '#58a6ff' },
        },
        {
          label: 'p95 (60 s)',
          stroke: '#f2cc60',
          width: 1.5,
          dash: [6, 4],
          spanGaps: false,
          points: { show: false },
        },
      ],
      axes: [
        {
          ...axis,
          size: Math.round(30 * scale),
          space: Math.round(70 * scale),
          // Ticks of our own (timeTicks): uPlot's steps jump from 1 to 5 (s or min), which
          // left a chart of 4 to 10 minutes one label.
          splits: (u, _axis, min, max) => {
            const widthPx = u.bbox.width / window.uPlot.pxRatio;
            const offsetMs = -new Date(min * 1000).getTimezoneOffset() * 60 * 1000;
            const found = timeTicks(min * 1000, max * 1000, widthPx, labelPx, offsetMs);
            timeStepMs = found.stepMs;
            return found.ticks.map((t) => t / 1000);
          },
          values: (_u, splits) =>
            splits.map((s) => (s == null ? '' : clockText(s * 1000, timeStepMs < 60 * 1000))),
        },
        { ...axis, size: Math.round(42 * scale), space: Math.round(30 * scale) },
      ],
    };
  }

  function chartSummary(bot, p95Points) {
    const values = bot.points.map((p) => p.v);
    if (values.length === 0) return `Latency of ${bot.id}, last 15 minutes: no data yet.`;
    const lastP95 = p95Points.length ? p95Points[p95Points.length - 1].v : null;
    return (
      `Latency of ${bot.id}, last 15 minutes: ` +
      `${values.length} point${values.length === 1 ? '' : 's'}, ` +
      `latest ${formatMs(values[values.length - 1])}, lowest ${formatMs(Math.min(...values))}, ` +
      `highest ${formatMs(Math.max(...values))}` +
      (lastP95 === null ? '.' : `, p95 of the last minute ${formatMs(lastP95)}.`)
    );
  }

  function drawChart(bot, now) {
    bot.points = trimOlderThan(bot.points, now - CHART_SPAN_MS);
    if (bot.ids.size > bot.points.length) {
      bot.ids = new Set(bot.points.map((p) => p.id).filter((id) => id != null));
    }
    const end = Math.max(now, bot.points.length ? bot.points[bot.points.length - 1].t : now);
    const start = chartStart(bot.points.length ? bot.points[0].t : end, end);
    bot.view = [start, end];
    const p95Points = p95Series(bot.points, start, end, p95StepMs(end - start), P95_WINDOW_MS);
    const gapMs = gapThresholdMs(bot.points, app.config.silenceTimeoutMs);
    const data = chartData(bot.points, p95Points, findGaps(bot.points, gapMs, end));
    const box = bot.fields.chart;
    box.dataset.points = String(bot.points.length);
    box.setAttribute('aria-label', chartSummary(bot, p95Points));
    if (typeof window.uPlot !== 'function') return;
    if (bot.chart) {
      bot.chart.setData(data);
      return;
    }
    const width = Math.floor(box.clientWidth);
    if (width <= 0) {
      bot.dirty = true; // not laid out yet: next time
      return;
    }
    bot.chart = new window.uPlot(chartOptions(bot, width), data, box);
  }

  /**
   * What a chart (a uPlot) draws of one series ('latency' or 'p95'): [[ms, value]], oldest
   * first, with one [ms, null] where the line breaks. uPlot skips an undefined value, and a
   * null too when the series spans gaps; otherwise a null breaks the line.
   */
  function drawnLine(chart, name) {
    if (!chart) return [];
    const index = { latency: 1, p95: 2 }[name];
    if (!index) return [];
    const spans = chart.series[index].spanGaps === true;
    const [xs, ys] = [chart.data[0], chart.data[index]];
    const line = [];
    for (let i = 0; i < xs.length; i += 1) {
      const y = ys[i];
      if (y === undefined || (y === null && spans)) continue;
      if (y === null && (line.length === 0 || line[line.length - 1][1] === null)) continue;
      line.push([xs[i] * 1000, y]);
    }
    if (line.length && line[line.length - 1][1] === null) line.pop();
    return line;
  }

  /** The labels a chart's time axis shows (uPlot keeps what it drew in axes[i]._values). */
  function drawnTimeLabels(chart) {
    const values = chart && chart.axes[0] && chart.axes[0]._values;
    return Array.isArray(values) ? values.filter((v) => v != null && v !== '').map(String) : [];
  }

  /** The batch: charts and tile text of bots that changed since the last one. */
  function flush() {
    const now = relayNow();
    for (const bot of app.bots.values()) {
      if (bot.textDirty) renderText(bot);
      if (bot.dirty) {
        bot.dirty = false;
        drawChart(bot, now);
      }
    }
  }

  function slide() {
    for (const bot of app.bots.values()) bot.dirty = true;
  }

  function renderAlerts() {
    const all = [...app.alerts.values()];
    const rank = { firing: 0, pending: 1 };
    const active = all
      .filter((a) => a.state === 'firing' || a.state === 'pending')
      .sort((a, b) => rank[a.state] - rank[b.state] || (a.since_ms ?? 0) - (b.since_ms ?? 0));
    const resolved = all
      .filter((a) => a.state === 'resolved')
      .sort((a, b) => (b.at_ms ?? 0) - (a.at_ms ?? 0))
      .slice(0, RESOLVED_SHOWN);
    fillAlertList($('#alerts-active'), active);
    fillAlertList($('#alerts-resolved'), resolved);
    $('#alerts-none').hidden = active.length > 0;
    $('#resolved-none').hidden = resolved.length > 0;
    // A bot's tile is marked muted while a mute (/api/mutes) covers one of its live alerts.
    const muted = new Set(active.filter((a) => a.muted === true).map((a) => a.bot));
    for (const bot of app.bots.values()) {
      if (bot.element) bot.element.toggleAttribute('data-muted', muted.has(bot.id));
    }
    renderAlertTimes(relayNow());
  }

  function fillAlertList(list, alerts) {
    const existing = new Map([...list.children].map((item) => [item.dataset.alert, item]));
    const wanted = new Set(alerts.map(alertKey));
    for (const [key, item] of existing) if (!wanted.has(key)) item.remove();
    for (const alert of alerts) {
      const key = alertKey(alert);
      let item =
        existing.get(key) || document.querySelector(`#alerts [data-alert="${CSS.escape(key)}"]`);
      if (!item) item = alertItem(key);
      item.dataset.state = alert.state;
      item.toggleAttribute('data-muted', alert.muted === true);
      item.title = alert.muted === true ? 'muted: notifies no one until its mute ends' : '';
      item.dataset.sinceMs = String(alert.since_ms ?? '');
      item.dataset.atMs = String(alert.at_ms ?? '');
      const state = alert.muted === true ? `${alert.state} · muted` : alert.state;
      setText($('.alert-state', item), state);
      setText($('.alert-bot', item), alert.bot);
      const kind = alert.kind && alert.kind !== alert.rule ? ` (${alert.kind})` : '';
      setText($('.alert-rule', item), `${alert.rule}${kind}`);
      setText($('.alert-summary', item), alert.summary || '');
      list.append(item); // moves it into place (and out of the other list)
    }
  }

  function alertItem(key) {
    const item = document.createElement('li');
    item.className = 'alert';
    item.dataset.alert = key;
    const head = document.createElement('p');
    head.className = 'alert-head';
    head.style.margin = '0';
    for (const name of ['alert-state', 'alert-rule', 'alert-bot']) {
      const span = document.createElement('span');
      span.className = name;
      head.append(span, ' ');
    }
    const summary = document.createElement('p');
    summary.className = 'alert-summary';
    const time = document.createElement('p');
    time.className = 'alert-time';
    item.append(head, summary, time);
    return item;
  }

  function renderAlertTimes(now) {
    for (const item of document.querySelectorAll('#alerts [data-alert]')) {
      const since = Number(item.dataset.sinceMs);
      const at = Number(item.dataset.atMs);
      let text = '';
      if (item.dataset.state === 'resolved' && at) text = `resolved ${relativeTime(now - at)}`;
      else if (since) {
        text = `${item.dataset.state} since ${relativeTime(now - since).replace(/ ago$/, '')}`;
      }
      setText($('.alert-time', item), text);
    }
  }

  function renderRelay() {
    const panel = $('#relay');
    const field = (name) => $(`[data-field="${name}"]`, panel);
    const relay = app.relay;
    if (!relay) {
      panel.dataset.state = 'unknown';
      panel.dataset.redis = 'unknown';
      setText(field('relay-status'), app.client && app.client.connected ? '—' : 'not connected');
      setText(field('redis'), '—');
      setText(field('clients'), '—');
      setText(field('uptime'), '—');
    } else {
      panel.dataset.state = relay.status === 'ok' ? 'ok' : 'unavailable';
      panel.dataset.redis = relay.redis === 'subscribed' ? 'up' : 'down';
      setText(field('relay-status'), relay.status === 'ok' ? 'ok' : `unavailable`);
      setText(field('redis'), String(relay.redis ?? '—'));
      setText(field('clients'), formatCount(relay.clients));
      setText(field('channels'), Array.isArray(relay.channels) ? relay.channels.join(', ') : '—');
      setText(field('version'), String(relay.version ?? app.config.version ?? '—'));
      setText(field('relay-id'), String(relay.relay ?? '—'));
      const uptime = relay.uptime_s + (Date.now() - app.relayReceivedAt) / 1000;
      setText(field('uptime'), formatDuration(uptime));
    }
    setText(field('rate'), app.overallRate == null ? '—' : formatRate(app.overallRate));
    const note = relay && relay.status !== 'ok' && relay.reason ? relay.reason : app.relayNote;
    const noteElement = field('relay-note');
    setText(noteElement, note);
    noteElement.hidden = !note;
  }

  /** Every second: relative times, availability, the reconnect countdown, the relay's uptime. */
  function tick() {
    const now = relayNow();
    for (const bot of app.bots.values()) {
      renderLastSeen(bot, now);
      renderAvailability(bot, now);
    }
    renderAlertTimes(now);
    renderCountdown();
    if (app.relay) renderRelay();
  }

  // --- start ----------------------------------------------------------------------------------
  async function loadConfig(attempt = 0) {
    try {
      const response = await fetch('dashboard/config.json', {
        cache: 'no-store',
        credentials: 'omit',
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return await response.json();
    } catch {
      const delay = backoffDelay(attempt);
      const seconds = Math.max(1, Math.ceil(delay / 1000));
      setConnection('closed', `cannot load the relay’s settings — retrying in ${seconds} s`);
      await new Promise((resolve) => setTimeout(resolve, delay));
      return loadConfig(attempt + 1);
    }
  }

  async function start() {
    // Out of the address bar (and so of history and bookmarks) before anything else.
    const tokenInUrl = takeTokenFromAddressBar();
    $('#token-form').addEventListener('submit', onTokenSubmitted);
    $('#reconnect-now').addEventListener('click', reconnectNow);
    $('#change-token').addEventListener('click', () => {
      askForToken('');
      $('#token').focus();
    });
    window.addEventListener('online', reconnectNow);

    const config = await loadConfig();
    app.config = {
      ws_url: typeof config.ws_url === 'string' && config.ws_url ? config.ws_url : null,
      ws_port: Number(config.ws_port) || 2808,
      ws_scheme: config.ws_scheme === 'wss' ? 'wss' : 'ws',
      auth: config.auth === 'jwt' ? 'jwt' : 'none',
      history: config.history === true,
      // Where a chart's line breaks while a bot has too few points to know its interval.
      silenceTimeoutMs: Number(config.silence_timeout_s) * 1000 || Infinity,
      version: config.version,
    };
    if (app.config.auth === 'jwt') {
      app.token = tokenInUrl || storedToken();
      storeToken(app.token);
      $('#change-token').hidden = !app.token;
    }
    renderRelay();
    renderAlerts();
    renderSummary();
    setInterval(tick, 1000);
    setInterval(flush, REDRAW_EVERY_MS);
    setInterval(slide, SLIDE_EVERY_MS);
    setInterval(refreshAllAnalytics, ANALYTICS_EVERY_MS);
    connect();
  }

  window.pingpongDashboard = Object.freeze({
    logic: Object.freeze({
      quantile,
      p95,
      p95Series,
      p95StepMs,
      relativeTime,
      formatDuration,
      backoffDelay,
      idMs,
      mergeById,
      trimOlderThan,
      countBeats,
      availabilityFrom,
      availabilityNow,
      chartStart,
      gapThresholdMs,
      findGaps,
      chartData,
      timeTicks,
      clockText,
      hostForUrl,
      websocketUrl,
      formatMs,
      formatPct,
    }),
    chartIds: (botId) => (app.bots.get(botId)?.points ?? []).map((p) => p.id),
    chartPoints: (botId) => (app.bots.get(botId)?.points ?? []).map((p) => [p.t, p.v]),
    chartLine: (botId, series = 'latency') => drawnLine(app.bots.get(botId)?.chart, series),
    chartTimeLabels: (botId) => drawnTimeLabels(app.bots.get(botId)?.chart),
  });

  start();
})();
