// The dashboard's page: one HTML document with its style and script inline, each carrying the
// response's nonce, so it runs under `default-src 'none'` with nothing loaded from elsewhere.
import { PAGE_SCRIPT } from './page-script.js';

const escapes: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => escapes[c]!);

const STYLE = `
:root { color-scheme: light dark; --bg: #f6f7f9; --fg: #1b1f24; --muted: #4f5863; --card: #ffffff; --line: #d5dae1;
  --ok: #1a7f37; --bad: #c0262d; --warn: #9a6700; --iso: #6639ba; --accent: #0b5cad; --focus: #0b5cad; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0f1217; --fg: #e6e9ee; --muted: #a9b1bc; --card: #181c23; --line: #2d343e;
    --ok: #4ac26b; --bad: #ff7b72; --warn: #e3b341; --iso: #c297ff; --accent: #6cb6ff; --focus: #6cb6ff; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: baseline; padding: 1rem 1.25rem .5rem; }
h1 { font-size: 1.3rem; margin: 0; }
#status { font-weight: 600; }
#status[data-live="yes"] { color: var(--ok); }
#status[data-live="no"] { color: var(--bad); }
#updated { color: var(--muted); font-size: .9rem; }
main { padding: 0 1.25rem 2rem; display: flex; flex-wrap: wrap; gap: 0 1.5rem; align-items: flex-start; }
main > * { flex: 1 1 100%; }
main > section { flex: 1 1 17rem; }
section > h2 { font-size: 1rem; margin: 1.25rem 0 .5rem; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
section[hidden] { display: none; }
.grid { display: grid; gap: .75rem; grid-template-columns: repeat(auto-fill, minmax(17rem, 1fr)); }
article { background: var(--card); border: 1px solid var(--line); border-left-width: 5px; border-radius: 8px; padding: .7rem .85rem; }
article:focus-visible, summary:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
article[data-tone="ok"] { border-left-color: var(--ok); }
article[data-tone="bad"] { border-left-color: var(--bad); }
article[data-tone="warn"] { border-left-color: var(--warn); }
article[data-tone="iso"] { border-left-color: var(--iso); }
article h3 { font-size: 1rem; margin: 0; overflow-wrap: anywhere; }
.top { display: flex; justify-content: space-between; gap: .5rem; align-items: center; }
.state { font-size: .8rem; font-weight: 700; padding: .1rem .5rem; border-radius: 99px; border: 1px solid currentColor; white-space: nowrap; }
.state[data-tone="ok"] { color: var(--ok); } .state[data-tone="bad"] { color: var(--bad); }
.state[data-tone="warn"] { color: var(--warn); } .state[data-tone="iso"] { color: var(--iso); }
dl { display: grid; grid-template-columns: auto 1fr; gap: .1rem .75rem; margin: .5rem 0; font-size: .9rem; }
dt { color: var(--muted); } dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; }
svg { display: block; width: 100%; height: 40px; }
svg .line { fill: none; stroke: var(--accent); stroke-width: 1.5; }
svg .limit { fill: none; stroke: var(--muted); stroke-width: 1; stroke-dasharray: 3 3; }
svg .fail { fill: none; stroke: var(--bad); stroke-width: 1.5; }
details { font-size: .85rem; margin-top: .35rem; }
summary { cursor: pointer; color: var(--muted); }
ol { margin: .25rem 0 0; padding-left: 1.2rem; max-height: 12rem; overflow: auto; }
#empty { color: var(--muted); }
@media (max-width: 30rem) { header, main { padding-left: .75rem; padding-right: .75rem; } .grid { grid-template-columns: 1fr; } }
`;

/** The page, with `title` escaped and `nonce` on its style and script. */
export function renderPage(title: string, nonce: string): string {
  const t = escapeHtml(title);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${t} · dashboard</title>
<link rel="icon" href="data:,">
<style nonce="${nonce}">${STYLE}</style>
</head>
<body>
<header>
<h1>${t}</h1>
<span id="status" role="status" aria-live="polite" data-live="no">connecting…</span>
<span id="updated"></span>
</header>
<main>
<p id="empty">No policies yet.</p>
<section id="breakers" aria-labelledby="h-breakers" hidden><h2 id="h-breakers">Circuit breakers</h2><div class="grid"></div></section>
<section id="limits" aria-labelledby="h-limits" hidden><h2 id="h-limits">Rate limits and quotas</h2><div class="grid"></div></section>
<section id="concurrency" aria-labelledby="h-concurrency" hidden><h2 id="h-concurrency">Bulkheads and adaptive limits</h2><div class="grid"></div></section>
<section id="retries" aria-labelledby="h-retries" hidden><h2 id="h-retries">Retries</h2><div class="grid"></div></section>
<section id="load" aria-labelledby="h-load" hidden><h2 id="h-load">Load shedding</h2><div class="grid"></div></section>
<section id="health" aria-labelledby="h-health" hidden><h2 id="h-health">Health checks</h2><div class="grid"></div></section>
</main>
<script nonce="${nonce}">${PAGE_SCRIPT}</script>
</body>
</html>
`;
}
