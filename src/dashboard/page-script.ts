// The dashboard page's script, inline in the page (see page.ts): plain ES2017 for any browser.
// It opens the event stream next to the page's path, keeps up to 60 readings per tile for the
// sparklines, updates tiles in place (text only, never HTML from the data) and reconnects when
// the stream drops.
export const PAGE_SCRIPT = String.raw`
(function () {
  'use strict';
  var HISTORY = 60;
  var GROUP = { 'circuit-breaker': 'breakers', 'rate-limiter': 'limits', quota: 'limits', bulkhead: 'concurrency', 'admission-controller': 'concurrency', retry: 'retries', 'load-shedder': 'load', health: 'health' };
  var KIND = { 'circuit-breaker': 'circuit breaker', 'rate-limiter': 'rate limiter', quota: 'quota', bulkhead: 'bulkhead', 'admission-controller': 'admission limit', retry: 'retry', 'load-shedder': 'load shedder', health: 'health' };
  var SVG = 'http://www.w3.org/2000/svg';
  var tiles = new Map();
  var status = document.getElementById('status');
  var updated = document.getElementById('updated');
  var base = location.pathname.replace(/\/?$/, '/');
  var source;

  function make(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function num(n, digits) {
    if (typeof n !== 'number' || !isFinite(n)) return '–';
    return n.toLocaleString('en', { maximumFractionDigits: digits === undefined ? 1 : digits });
  }
  function pct(x) { return typeof x === 'number' ? num(x * 100, 0) + ' %' : '–'; }
  function bytes(n) { return typeof n === 'number' ? num(n / 1048576, 0) + ' MiB' : '–'; }
  function seconds(ms) { return typeof ms === 'number' ? num(ms / 1000, 1) + ' s' : '–'; }

  function tileFor(key, p) {
    var t = tiles.get(key);
    if (t) return t;
    var article = make('article');
    article.tabIndex = 0;
    article.dataset.kind = p.kind;
    article.dataset.name = p.name;
    var top = make('div', 'top');
    var title = make('h3', '', p.name);
    var badge = make('span', 'state');
    top.append(title, badge);
    var dl = make('dl');
    var svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + (HISTORY - 1) + ' 40');
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('role', 'img');
    var lines = {};
    ['limit', 'line', 'fail'].forEach(function (cls) {
      var l = document.createElementNS(SVG, 'polyline');
      l.setAttribute('class', cls);
      svg.append(l);
      lines[cls] = l;
    });
    var details = make('details');
    var summary = make('summary', '', 'Last events');
    var list = make('ol');
    details.append(summary, list);
    article.append(top, dl, svg, details);
    article.setAttribute('aria-label', KIND[p.kind] + ' ' + p.name);
    var grid = document.querySelector('#' + GROUP[p.kind] + ' .grid');
    grid.append(article);
    t = { article: article, badge: badge, dl: dl, svg: svg, lines: lines, list: list, history: [], fields: new Map(), seen: true, lastEvent: -1 };
    tiles.set(key, t);
    return t;
  }
  function field(t, label, value) {
    var dd = t.fields.get(label);
    if (!dd) {
      t.dl.append(make('dt', '', label));
      dd = make('dd');
      t.dl.append(dd);
      t.fields.set(label, dd);
    }
    if (dd.textContent !== value) dd.textContent = value;
  }
  function badge(t, text, tone) {
    t.badge.textContent = text;
    t.badge.dataset.tone = tone;
    t.article.dataset.tone = tone;
  }
  function points(values, max) {
    var out = [];
    var step = values.length > 1 ? (HISTORY - 1) / (values.length - 1) : 0;
    for (var i = 0; i < values.length; i++) {
      var v = typeof values[i] === 'number' ? values[i] : 0;
      out.push((values.length > 1 ? i * step : HISTORY - 1).toFixed(1) + ',' + (39 - (max > 0 ? (v / max) * 37 : 0)).toFixed(1));
    }
    return out.join(' ');
  }
  function spark(t, entry, label) {
    t.history.push(entry);
    if (t.history.length > HISTORY) t.history.shift();
    var main = t.history.map(function (h) { return h.value; });
    var max = Math.max.apply(null, main.concat(t.history.map(function (h) { return h.limit || 0; }), [1]));
    t.lines.line.setAttribute('points', points(main, max));
    t.lines.limit.setAttribute('points', entry.limit === undefined ? '' : points(t.history.map(function (h) { return h.limit; }), max));
    t.lines.fail.setAttribute('points', entry.fail === undefined ? '' : points(t.history.map(function (h) { return h.fail; }), max));
    t.svg.setAttribute('aria-label', label + ' over the last ' + t.history.length + ' s, now ' + num(entry.value));
  }
  function events(t, list) {
    var last = list.length ? list[list.length - 1].at : -1;
    if (last === t.lastEvent && t.list.childElementCount === list.length) return;
    t.lastEvent = last;
    t.list.replaceChildren.apply(t.list, list.slice().reverse().map(function (e) {
      var parts = Object.keys(e.detail).map(function (k) { return k + ' ' + e.detail[k]; });
      return make('li', '', new Date(e.at).toLocaleTimeString() + ' ' + e.type + (parts.length ? ': ' + parts.join(', ') : ''));
    }));
  }

  var render = {
    'circuit-breaker': function (t, p) {
      var s = p.state, r = p.rates || {};
      var tone = { closed: 'ok', open: 'bad', 'half-open': 'warn', isolated: 'iso' }[s.state] || 'warn';
      badge(t, s.state, tone);
      field(t, 'Requests/s', num(r.perSecond));
      field(t, 'Failures', pct(r.failed));
      field(t, 'Slow', s.slowCallMs === null ? 'not judged' : pct(r.slow));
      field(t, 'Rejected/s', num(r.rejectedPerSecond));
      field(t, 'Half-open in', s.state === 'open' ? seconds(s.halfOpenInMs) : '–');
      spark(t, { value: r.perSecond || 0, fail: (r.perSecond || 0) * (r.failed || 0) }, 'Requests per second');
    },
    'rate-limiter': function (t, p) {
      var s = p.state, r = p.rates || {};
      var store = s.store || 'no decision yet';
      badge(t, store, store === 'fail-closed' ? 'bad' : store === 'local' || store === 'fail-open' ? 'warn' : 'ok');
      field(t, 'Decisions/s', num(r.perSecond));
      field(t, 'Denied', pct(r.denied));
      field(t, p.kind === 'quota' ? 'Limit per ' + s.period : 'Algorithm', p.kind === 'quota' ? num(s.limit, 0) : s.algorithm);
      field(t, 'On store error', s.onStoreError || 'store default');
      field(t, 'Mode', s.mode);
      spark(t, { value: r.perSecond || 0, fail: (r.perSecond || 0) * (r.denied || 0) }, 'Decisions per second');
    },
    bulkhead: function (t, p) {
      var s = p.state;
      badge(t, s.inFlight >= s.limit ? 'full' : 'has room', s.inFlight >= s.limit ? 'warn' : 'ok');
      field(t, 'In flight', num(s.inFlight, 0) + ' / ' + num(s.limit, 0));
      field(t, 'Queued', num(s.queued, 0) + ' / ' + num(s.maxQueue, 0));
      field(t, 'Mode', s.mode + (s.adaptive ? ', adaptive' : ''));
      spark(t, { value: s.inFlight, limit: s.limit }, 'Calls in flight against the limit');
    },
    retry: function (t, p) {
      var s = p.state, b = s.budget;
      badge(t, b ? (b.available > 0 ? 'budget left' : 'budget spent') : 'no budget', b && b.available === 0 ? 'bad' : 'ok');
      field(t, 'Max attempts', num(s.maxAttempts, 0));
      field(t, 'Budget available', b ? num(b.available, 0) : '–');
      spark(t, { value: b ? b.available : 0 }, 'Retries available');
    },
    'load-shedder': function (t, p) {
      var s = p.state, sig = s.signals;
      badge(t, s.shedding ? 'shedding: ' + s.shedding : 'not shedding', s.shedding ? 'bad' : 'ok');
      var shown = [['eventLoopDelayMs', 'Event-loop delay', function (v) { return num(v) + ' ms'; }], ['eventLoopUtilization', 'Event-loop use', pct], ['heapUsedBytes', 'Heap used', bytes], ['heapUsedRatio', 'Heap share', pct], ['rssBytes', 'RSS', bytes]];
      shown.forEach(function (x) {
        var v = sig[x[0]];
        if (v && (v.value !== undefined || v.threshold !== undefined)) field(t, x[1], (v.value === undefined ? '–' : x[2](v.value)) + ' / ' + (v.threshold === undefined ? '–' : x[2](v.threshold)));
      });
      var delay = sig.eventLoopDelayMs || {};
      spark(t, { value: delay.value || 0, limit: delay.threshold }, 'Event-loop delay in ms');
    },
    health: function (t, p) {
      var s = p.state;
      var failing = s.checks.filter(function (c) { return c.status === 'fail' && c.critical; }).length;
      badge(t, s.shuttingDown ? 'shutting down' : failing ? failing + ' failing' : s.started ? 'started' : 'starting', s.shuttingDown || failing ? 'bad' : s.started ? 'ok' : 'warn');
      s.checks.forEach(function (c) { field(t, c.name, (c.status || 'not run') + (c.durationMs === undefined ? '' : ', ' + num(c.durationMs) + ' ms')); });
      spark(t, { value: failing }, 'Failing critical checks');
    },
  };
  render.quota = render['rate-limiter'];
  render['admission-controller'] = render.bulkhead;

  function show(data) {
    tiles.forEach(function (t) { t.seen = false; });
    var count = {};
    data.policies.forEach(function (p) {
      if (!render[p.kind]) return;
      var id = p.kind + '\u0000' + p.name;
      count[id] = (count[id] || 0) + 1;
      var t = tileFor(id + '\u0000' + count[id], p);
      t.seen = true;
      render[p.kind](t, p);
      events(t, p.events);
    });
    tiles.forEach(function (t, key) {
      if (!t.seen) { t.article.remove(); tiles.delete(key); }
    });
    document.querySelectorAll('section').forEach(function (s) { s.hidden = s.querySelector('article') === null; });
    document.getElementById('empty').hidden = tiles.size > 0;
    updated.textContent = 'updated ' + new Date(data.at).toLocaleTimeString();
  }
  function live(yes) {
    status.dataset.live = yes ? 'yes' : 'no';
    status.textContent = yes ? 'live' : 'reconnecting…';
  }
  function connect() {
    source = new EventSource(base + 'events' + location.search);
    source.onmessage = function (e) { live(true); show(JSON.parse(e.data)); };
    source.onerror = function () {
      live(false);
      if (source.readyState === EventSource.CLOSED) { source.close(); setTimeout(connect, 1000); }
    };
  }
  connect();
})();
`;
