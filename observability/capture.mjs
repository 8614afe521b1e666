// A picture of a real demo run, as a real Prometheus saw it: this starts Prometheus (Debian's
// `prometheus` package) with a 1 s scrape of the demo's /metrics and the alert rules loaded, runs
// `npm run demo`'s script against it, then asks Prometheus's query API for every series the
// Grafana dashboard (observability/grafana-dashboard.json) plots, over the run, and draws them as
// one SVG: no number in the picture comes from anywhere but Prometheus.
//
//   npm run build && node observability/capture.mjs [--out observability/demo-run.svg]
//
// The dashboard's Grafana variables are filled in as a user opening it would have them:
// `$__rate_interval` becomes 5s (five scrapes), `$__interval` 1s, and a template variable used as
// `=~"$name"` matches everything.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { freePort, onPath } from '../benchmarks/support.mjs';

const root = resolve(import.meta.dirname, '..');
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
const { values: args } = parseArgs({ options: { out: { type: 'string', default: join(root, 'observability', 'demo-run.svg') } } });
const prometheusBin = onPath('prometheus');
if (prometheusBin === undefined) {
  console.error('prometheus is not installed: apt-get install -y prometheus (Debian package)');
  process.exit(1);
}

const dashboard = JSON.parse(readFileSync(join(root, 'observability', 'grafana-dashboard.json'), 'utf8'));
const panels = (dashboard.panels ?? [])
  .flatMap((p) => (p.type === 'row' ? (p.panels ?? []) : [p]))
  .filter((p) => Array.isArray(p.targets) && p.targets.some((t) => typeof t.expr === 'string'));
if (panels.length === 0) throw new Error('the dashboard has no panels with PromQL targets');

/** A dashboard expression with Grafana's variables filled in (see the header). */
function fillVariables(expr) {
  return expr
    .replaceAll('$__rate_interval', '5s')
    .replaceAll('${__rate_interval}', '5s')
    .replaceAll('$__interval', '1s')
    .replaceAll('${__interval}', '1s')
    .replace(/=~\s*"\$\{?[A-Za-z_]\w*\}?"/g, '=~".*"');
}

// ---- Prometheus ------------------------------------------------------------------------------
const apiPort = await freePort();
const promPort = await freePort();
const dir = mkdtempSync(join(tmpdir(), 'bulwark-capture-'));
writeFileSync(
  join(dir, 'prometheus.yml'),
  [
    'global:',
    '  scrape_interval: 1s',
    '  evaluation_interval: 1s',
    'rule_files:',
    `  - ${JSON.stringify(join(root, 'observability', 'alerts.yml'))}`,
    'scrape_configs:',
    '  - job_name: bulwark-demo',
    '    metrics_path: /metrics',
    '    static_configs:',
    `      - targets: ['127.0.0.1:${apiPort}']`,
    '',
  ].join('\n'),
);
const prometheus = spawn(
  prometheusBin,
  [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${promPort}`,
    '--log.level=warn',
  ],
  { stdio: ['ignore', 'ignore', 'inherit'] },
);
const promUrl = `http://127.0.0.1:${promPort}`;
try {
  const readyBy = Date.now() + 20_000;
  for (;;) {
    const ready = await fetch(`${promUrl}/-/ready`).then((r) => r.ok, () => false);
    if (ready) break;
    if (Date.now() > readyBy) throw new Error('Prometheus did not become ready within 20 s');
    await sleep(200);
  }
  // Prometheus applies its targets a few seconds after start: wait for its first (failed) scrape
  // of the port the demo will use, so the run is seen from its first second.
  for (;;) {
    const targets = await fetch(`${promUrl}/api/v1/targets`).then((r) => r.json(), () => undefined);
    const scraped = targets?.data?.activeTargets?.some((t) => t.lastScrape && !t.lastScrape.startsWith('0001-'));
    if (scraped) break;
    if (Date.now() > readyBy + 20_000) throw new Error('Prometheus did not scrape its target within 40 s');
    await sleep(200);
  }
  console.log(`Prometheus ${promUrl} scrapes http://127.0.0.1:${apiPort}/metrics every second\n`);

  // ---- the demo ------------------------------------------------------------------------------
  const startedAt = Date.now();
  const phases = [];
  const demoCode = await new Promise((done, fail) => {
    const demo = spawn(process.execPath, [join(root, 'demo', 'main.mjs')], {
      cwd: root,
      env: { ...process.env, BULWARK_DEMO_PORT: String(apiPort), REDIS_URL: '' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buffered = '';
    demo.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      buffered += chunk;
    });
    demo.once('error', fail);
    demo.once('exit', (code) => {
      for (const m of buffered.matchAll(/^\s+([\d.]+) s\s+phase: (\w+)/gm)) phases.push({ at: Number(m[1]), name: m[2] });
      done(code);
    });
  });
  if (demoCode !== 0) throw new Error(`the demo exited with code ${demoCode}`);
  const endedAt = Date.now();
  await sleep(1_500); // one more rule evaluation over the last samples

  // ---- query ---------------------------------------------------------------------------------
  const start = startedAt / 1000;
  const end = endedAt / 1000;
  const charts = [];
  for (const panel of panels) {
    const series = [];
    for (const target of panel.targets) {
      if (typeof target.expr !== 'string') continue;
      const query = fillVariables(target.expr);
      const url = `${promUrl}/api/v1/query_range?${new URLSearchParams({ query, start: String(start), end: String(end), step: '1' })}`;
      const body = await (await fetch(url)).json();
      if (body.status !== 'success') throw new Error(`Prometheus refused ${query}: ${body.error ?? JSON.stringify(body)}`);
      for (const result of body.data.result) {
        series.push({
          label: legend(target.legendFormat, result.metric),
          points: result.values.map(([t, v]) => [Number(t) - start, Number(v)]).filter(([, v]) => Number.isFinite(v)),
        });
      }
    }
    const mappings = Object.fromEntries(
      (panel.fieldConfig?.defaults?.mappings ?? [])
        .filter((m) => m.type === 'value')
        .flatMap((m) => Object.entries(m.options ?? {}).map(([value, o]) => [Number(value), o.text ?? value])),
    );
    charts.push({ title: panel.title ?? '(untitled)', unit: panel.fieldConfig?.defaults?.unit, mappings, series });
    console.log(`${panel.title}: ${series.length} series`);
  }
  // Panels for mechanisms the demo does not use (bulkheads, hedges, load shedding, ...) have no
  // series: they are named in the picture's footer instead of drawn empty.
  const drawn = charts.filter((c) => c.series.length > 0);
  const empty = charts.filter((c) => c.series.length === 0).map((c) => c.title);
  const svg = render(drawn, empty, phases, (endedAt - startedAt) / 1000, new Date(startedAt));
  writeFileSync(args.out, svg);
  console.log(`\nwrote ${args.out}`);
} finally {
  prometheus.kill('SIGTERM');
  await new Promise((done) => (prometheus.exitCode !== null ? done() : prometheus.once('exit', done)));
  rmSync(dir, { recursive: true, force: true });
}

/** A series' legend: Grafana's `{{label}}` format filled from its labels, or the labels listed. */
function legend(format, metric) {
  if (typeof format === 'string' && format.length > 0 && format !== '__auto') {
    return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name) => metric[name] ?? '');
  }
  const labels = Object.entries(metric).filter(([k]) => k !== '__name__' && k !== 'job' && k !== 'instance');
  return labels.length > 0 ? labels.map(([k, v]) => `${k}=${v}`).join(', ') : (metric.__name__ ?? 'value');
}

// ---- drawing ---------------------------------------------------------------------------------
function escapeXml(text) {
  return String(text).replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]);
}

/** A round step for an axis from 0 to `max` with about `count` ticks. */
function niceStep(max, count) {
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

/** A tick label: Grafana's value mapping when the panel has one, else the number in its unit. */
function formatValue(v, unit, mappings) {
  if (mappings[v] !== undefined) return mappings[v];
  if (unit === 'percentunit') return `${+(v * 100).toPrecision(3)}%`;
  if (unit === 's') return v >= 1 ? `${+v.toPrecision(3)} s` : `${+(v * 1000).toPrecision(3)} ms`;
  if (Math.abs(v) >= 1000) return `${+(v / 1000).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
}

function render(charts, empty, phases, seconds, when) {
  const columns = 2;
  const w = 560;
  const h = 260;
  const gap = 20;
  const header = 56;
  const rows = Math.ceil(charts.length / columns);
  const width = columns * w + (columns + 1) * gap;
  const footer = empty.length > 0 ? 14 + 14 * Math.ceil((90 + empty.join(', ').length) / 150) : 0;
  const height = header + rows * (h + gap) + gap + footer;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${gap}" y="26" font-size="18" font-weight="bold">bulwark demo run, scraped by Prometheus every 1 s: the Grafana dashboard's queries over ${Math.round(seconds)} s</text>`,
    `<text x="${gap}" y="46" font-size="12" fill="#555">${escapeXml(when.toISOString().replace('T', ' ').slice(0, 19))} UTC · node observability/capture.mjs · shaded bands are the demo's phases (${phases.map((p) => p.name).join(', ')})</text>`,
  ];
  charts.forEach((chart, i) => {
    const x0 = gap + (i % columns) * (w + gap);
    const y0 = header + Math.floor(i / columns) * (h + gap);
    out.push(panel(chart, x0, y0, w, h, phases, seconds));
  });
  if (empty.length > 0) {
    const text = `Panels with no series in this run (the demo does not use these mechanisms): ${empty.join(', ')}.`;
    const lines = text.match(/.{1,150}(\s|$)/g) ?? [text];
    lines.forEach((line, i) => out.push(`<text x="${gap}" y="${height - footer + 4 + i * 14}" font-size="11" fill="#555">${escapeXml(line.trim())}</text>`));
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function panel(chart, x0, y0, w, h, phases, seconds) {
  const left = 66;
  const right = 12;
  const top = 26;
  const legendRows = Math.min(chart.series.length, 5);
  const bottom = 34 + legendRows * 14;
  const pw = w - left - right;
  const ph = h - top - bottom;
  const mapped = Object.keys(chart.mappings).map(Number);
  const max = Math.max(0, ...mapped, ...chart.series.flatMap((s) => s.points.map(([, v]) => v)));
  // A state panel (value mappings) gets one tick per state; others about four round ones.
  const yStep = mapped.length > 0 ? 1 : niceStep(max > 0 ? max : 1, 4);
  const yMax = Math.max(yStep, Math.ceil((max > 0 ? max : 1) / yStep) * yStep);
  const xs = (t) => x0 + left + (Math.min(Math.max(t, 0), seconds) / seconds) * pw;
  const ys = (v) => y0 + top + ph - (v / yMax) * ph;
  const parts = [
    `<g>`,
    `<rect x="${x0}" y="${y0}" width="${w}" height="${h}" fill="#fafafa" stroke="#ddd"/>`,
    `<text x="${x0 + 10}" y="${y0 + 18}" font-size="13" font-weight="bold">${escapeXml(chart.title)}</text>`,
  ];
  phases.forEach((p, i) => {
    const until = phases[i + 1]?.at ?? seconds;
    if (i % 2 === 0) parts.push(`<rect x="${xs(p.at)}" y="${y0 + top}" width="${Math.max(0, xs(until) - xs(p.at))}" height="${ph}" fill="#eef2f7"/>`);
    parts.push(`<text x="${xs(p.at) + 3}" y="${y0 + top + 11}" font-size="10" fill="#889">${escapeXml(p.name)}</text>`);
  });
  for (let v = 0; v <= yMax + 1e-9; v += yStep) {
    parts.push(`<line x1="${x0 + left}" x2="${x0 + left + pw}" y1="${ys(v)}" y2="${ys(v)}" stroke="#e3e3e3"/>`);
    parts.push(`<text x="${x0 + left - 6}" y="${ys(v) + 4}" font-size="10" text-anchor="end" fill="#555">${escapeXml(formatValue(v, chart.unit, chart.mappings))}</text>`);
  }
  const xStep = niceStep(seconds, 6);
  for (let t = 0; t <= seconds + 1e-9; t += xStep) {
    parts.push(`<text x="${xs(t)}" y="${y0 + top + ph + 14}" font-size="10" text-anchor="middle" fill="#555">${t} s</text>`);
  }
  parts.push(`<line x1="${x0 + left}" x2="${x0 + left}" y1="${y0 + top}" y2="${y0 + top + ph}" stroke="#999"/>`);
  parts.push(`<line x1="${x0 + left}" x2="${x0 + left + pw}" y1="${y0 + top + ph}" y2="${y0 + top + ph}" stroke="#999"/>`);
  if (chart.series.length === 0) {
    parts.push(`<text x="${x0 + left + pw / 2}" y="${y0 + top + ph / 2}" font-size="12" text-anchor="middle" fill="#999">no data in this run</text>`);
  }
  chart.series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    if (s.points.length === 1) {
      const [[t, v]] = s.points;
      parts.push(`<circle cx="${xs(t)}" cy="${ys(v)}" r="2" fill="${colour}"/>`);
    } else if (s.points.length > 1) {
      const d = s.points.map(([t, v], k) => `${k === 0 ? 'M' : 'L'}${xs(t).toFixed(1)},${ys(v).toFixed(1)}`).join('');
      parts.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="1.6"/>`);
    }
  });
  chart.series.slice(0, legendRows).forEach((s, i) => {
    const y = y0 + top + ph + 28 + i * 14;
    parts.push(`<rect x="${x0 + left}" y="${y - 8}" width="10" height="3" fill="${COLOURS[i % COLOURS.length]}"/>`);
    parts.push(`<text x="${x0 + left + 16}" y="${y - 3}" font-size="10" fill="#333">${escapeXml(s.label.slice(0, 80))}</text>`);
  });
  if (chart.series.length > legendRows) {
    parts.push(`<text x="${x0 + w - 10}" y="${y0 + h - 6}" font-size="10" text-anchor="end" fill="#777">+${chart.series.length - legendRows} more series</text>`);
  }
  parts.push('</g>');
  return parts.join('\n');
}
