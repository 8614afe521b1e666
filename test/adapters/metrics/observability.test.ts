// The files under observability/: the alerting rules pass `promtool check rules` and their own
// unit tests, and the Grafana dashboard is valid JSON whose every query parses as PromQL and names
// only metrics that registerMetrics produces.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerMetrics } from '../../../src/metrics/index.js';
import { promtool } from './support.js';

const root = resolve(import.meta.dirname, '../../..');
const dir = join(root, 'observability');
const alertsFile = join(dir, 'alerts.yml');
const alertsTestFile = join(dir, 'alerts.test.yml');
const dashboardFile = join(dir, 'grafana-dashboard.json');

/** The metric names registerMetrics produces (default prefix), with a histogram's series names. */
const produced: ReadonlySet<string> = (() => {
  const registry = new Registry();
  const registration = registerMetrics(registry);
  const names = new Set<string>();
  for (const metric of registry.getMetricsAsArray() as unknown as { name: string; type: string }[]) {
    names.add(metric.name);
    if (metric.type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(metric.name + suffix);
  }
  registration.dispose();
  return names;
})();

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects: what is left once strings, label matchers,
 * grouping lists, ranges, offsets' durations and function calls are taken out.
 */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\boffset\s+(?:\d+[smhdwy])+/gi, ' offset ');
  const names: string[] = [];
  for (const m of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const after = stripped.slice(m.index! + m[0].length);
    if (/^\s*\(/.test(after) || KEYWORDS.has(m[0].toLowerCase())) continue;
    names.push(m[0]);
  }
  return names;
}

/** Grafana's variables, replaced by values that make the expression plain PromQL. */
function withoutVariables(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '5m')
    .replaceAll('$__interval', '1m')
    .replaceAll('$job', '.*')
    .replaceAll('$instance', '.*');
}

/** Runs `promtool check rules` on recording rules made of `exprs`. */
function checkExpressions(exprs: readonly string[]): ReturnType<typeof promtool> {
  const tmp = mkdtempSync(join(tmpdir(), 'bulwark-dashboard-'));
  try {
    const file = join(tmp, 'rules.yml');
    // YAML is a superset of JSON: the rules file is written as JSON, with no quoting to get wrong.
    const rules = exprs.map((expr, i) => ({ record: `bulwark:dashboard_query_${i}:check`, expr: withoutVariables(expr) }));
    writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
    return promtool(['check', 'rules', file]);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

interface Panel {
  readonly id?: number;
  readonly type: string;
  readonly title?: string;
  readonly targets?: readonly { readonly expr?: string; readonly legendFormat?: string }[];
  readonly panels?: readonly Panel[];
}

function allPanels(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

/**
 * The labels a query's series keep: those of its `by (...)` lists (a histogram's `le` is consumed
 * by histogram_quantile). A query without `by` keeps no label the test can name.
 */
export function keptLabels(expr: string): string[] {
  const labels = new Set<string>();
  for (const m of expr.matchAll(/\bby\s*\(([^)]*)\)/g)) {
    for (const l of m[1]!.split(',')) if (l.trim() !== '') labels.add(l.trim());
  }
  if (/\bhistogram_quantile\s*\(/.test(expr)) labels.delete('le');
  return [...labels];
}

describe('metricNamesIn (the test\'s own PromQL reader)', () => {
  it('finds selected metrics and skips functions, labels, groupings and keywords', () => {
    expect(
      metricNamesIn(
        'sum by (policy, le) (rate(bulwark_a_total{job=~"$job", x="y{z}"}[5m])) / on (policy) group_left() bulwark_b and bool up > 0',
      ),
    ).toEqual(['bulwark_a_total', 'bulwark_b', 'up']);
  });

  it('reads the duration after offset as no metric', () => {
    expect(metricNamesIn('bulwark_a_total unless bulwark_a_total offset 15m or bulwark_b offset 1h30m')).toEqual([
      'bulwark_a_total',
      'bulwark_a_total',
      'bulwark_b',
    ]);
  });
});

describe('keptLabels (the test\'s own reader of grouping lists)', () => {
  it('collects every by (...) label and leaves out le under histogram_quantile', () => {
    expect(keptLabels('histogram_quantile(0.5, sum by (kind, policy, le) (rate(x_bucket[5m])))')).toEqual(['kind', 'policy']);
    expect(keptLabels('max by (job, instance, policy) (a) + 2 * max by (job, instance, policy) (b)')).toEqual(['job', 'instance', 'policy']);
    expect(keptLabels('sum(rate(x[5m]))')).toEqual([]);
  });
});

describe('the promtool helper', () => {
  it('fails, saying how to install promtool, when it is missing (never skips)', () => {
    expect(() => promtool(['--version'], undefined, '/nonexistent/bin/promtool')).toThrow(
      'promtool is not installed at /nonexistent/bin/promtool: install it with `apt-get install -y prometheus`',
    );
  });
});

describe('observability/alerts.yml', () => {
  const text = readFileSync(alertsFile, 'utf8');
  const alerts = [...text.matchAll(/^\s*- alert: (\S+)/gm)].map((m) => m[1]!);

  it('passes promtool check rules', () => {
    const result = promtool(['check', 'rules', alertsFile]);
    expect(result.stdout + result.stderr).toContain(`SUCCESS: ${alerts.length} rules found`);
    expect(result.code).toBe(0);
  });

  it('has the five alerts', () => {
    expect(alerts).toEqual([
      'BulwarkCircuitOpenTooLong',
      'BulwarkRetryRatioHigh',
      'BulwarkRateLimitStoreFallingBack',
      'BulwarkRateLimitStoreStateLost',
      'BulwarkReadinessFailing',
    ]);
  });

  it('uses only metrics that registerMetrics produces', () => {
    const exprs = [...text.matchAll(/expr: \|\n((?:\s{10}.*\n)+)/g)].map((m) => m[1]!);
    expect(exprs).toHaveLength(alerts.length);
    for (const expr of exprs) {
      const names = metricNamesIn(expr);
      expect(names.length, expr).toBeGreaterThan(0);
      for (const name of names) expect(produced, `${name} in\n${expr}`).toContain(name);
    }
  });

  it('passes its unit tests (promtool test rules), which show every alert both firing and silent', () => {
    const tests = readFileSync(alertsTestFile, 'utf8');
    for (const alert of alerts) {
      const cases = [...tests.matchAll(new RegExp(`alertname: ${alert}\\n\\s*exp_alerts:(.*)`, 'g'))].map((m) => m[1]!.trim());
      expect(cases, `${alert} silent somewhere`).toContain('[]');
      expect(cases, `${alert} firing somewhere`).toContain('');
    }
    const result = promtool(['test', 'rules', alertsTestFile]);
    expect(result.stdout + result.stderr).toContain('SUCCESS');
    expect(result.code).toBe(0);
  });
});

describe('observability/grafana-dashboard.json', () => {
  const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as {
    title: string;
    uid: string;
    panels: Panel[];
    templating: { list: { name: string; query?: string | { query: string } }[] };
  };
  const panels = allPanels(dashboard.panels);
  const queries = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr ?? '' })));

  it('is a dashboard with panels that all have a query and distinct ids', () => {
    expect(dashboard.title).toMatch(/bulwark/);
    expect(dashboard.uid).toBeTruthy();
    const graphs = panels.filter((p) => p.type !== 'row');
    expect(graphs.length).toBeGreaterThanOrEqual(15);
    for (const p of graphs) expect(p.targets?.length, p.title).toBeGreaterThan(0);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('uses only metrics that registerMetrics produces, and shows every one of them', () => {
    const used = new Set<string>();
    for (const { panel, expr } of queries) {
      const names = metricNamesIn(expr);
      expect(names.length, `${panel}: ${expr}`).toBeGreaterThan(0);
      for (const name of names) {
        expect(produced, `${name} in panel "${panel}"`).toContain(name);
        used.add(name.replace(/_(bucket|sum|count)$/, ''));
      }
    }
    const registration = registerMetrics(new Registry());
    registration.dispose();
    for (const name of registration.metricNames) expect(used, `a panel for ${name}`).toContain(name);
  });

  // Regression (issue 12): the duration panel grouped by kind and policy but its legends showed
  // only the policy, so a retry and a timeout policy of one name drew two lines labelled alike;
  // the breaker-state and health panels kept `job` without showing it.
  it('gives every series its own legend: each legend shows every label its query keeps, and targets of one panel differ', () => {
    for (const p of panels) {
      const targets = p.targets ?? [];
      for (const t of targets) {
        const legend = t.legendFormat ?? '';
        for (const l of keptLabels(t.expr ?? '')) expect(legend, `panel "${p.title}": ${t.expr}`).toContain(`{{${l}}}`);
      }
      if (targets.length > 1) {
        const fixed = targets.map((t) => (t.legendFormat ?? '').replace(/\{\{\s*\w+\s*\}\}/g, '{}'));
        expect(new Set(fixed).size, `panel "${p.title}": ${fixed.join(' | ')}`).toBe(targets.length);
      }
    }
  });

  it('has queries that all parse as PromQL (checked as recording rules by promtool)', () => {
    const exprs = queries.map((q) => q.expr);
    const result = checkExpressions(exprs);
    expect(result.stdout + result.stderr).toContain(`SUCCESS: ${exprs.length} rules found`);
    expect(result.code).toBe(0);
  });

  it('the PromQL check catches a broken query (so the check above can fail)', () => {
    const result = checkExpressions(['sum by (policy (rate(bulwark_retries_total[5m]))']);
    expect(result.code).not.toBe(0);
  });

  it('has variables whose selectors name only bulwark metrics', () => {
    const selectors = dashboard.templating.list
      .map((v) => (typeof v.query === 'object' ? v.query.query : v.query))
      .filter((q): q is string => typeof q === 'string' && q.startsWith('label_values('));
    expect(selectors.length).toBeGreaterThanOrEqual(2);
    for (const q of selectors) {
      const selector = /^label_values\((.*),\s*\w+\)$/.exec(q)?.[1];
      expect(selector, q).toMatch(/^\{__name__=~"bulwark_\.\+"/);
    }
    const result = checkExpressions(selectors.map((q) => /^label_values\((.*),\s*\w+\)$/.exec(q)![1]!));
    expect(result.code).toBe(0);
  });
});
