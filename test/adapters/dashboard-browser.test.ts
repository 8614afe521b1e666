// The dashboard in a real browser (issue 17 §3): Debian's Chromium, headless, driven by
// playwright-core (which downloads nothing). The page loads under its CSP with no console error
// and no failed request, shows a breaker turning open then closed as the test drives failures,
// without a reload, and comes back when the server restarts. It also takes the screenshots of
// docs/images/ (written there with BULWARK_UPDATE_SCREENSHOTS=1). Without Chromium it fails,
// saying how to install it: it is never skipped.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { dashboard } from '../../src/dashboard/index.js';
import {
  admissionController,
  bulkhead,
  circuitBreaker,
  consecutive,
  fixedWindow,
  health,
  loadShedder,
  rateLimiter,
  retry,
  retryBudget,
} from '../../src/index.js';

const CHROMIUM = '/usr/bin/chromium';
// The screenshots are taken on every run; they replace the guide's images only when asked
// (BULWARK_UPDATE_SCREENSHOTS=1), so a test run leaves the checkout as it found it.
const updating = process.env.BULWARK_UPDATE_SCREENSHOTS === '1';
const images = updating ? resolve(import.meta.dirname, '../../docs/images') : mkdtempSync(join(tmpdir(), 'bulwark-dashboard-'));

let browser: Browser | undefined;
afterAll(async () => {
  await browser?.close();
  if (!updating) rmSync(images, { recursive: true, force: true });
});

/** The browser, launched once; without Chromium the test fails (in the test, so it counts as failed, not skipped). */
async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is missing at ${CHROMIUM}; the dashboard's browser test needs it: apt-get install -y chromium`);
  }
  browser ??= await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  return browser;
}

async function listen(port = 0): Promise<Server> {
  const page = dashboard({ title: 'orders service' });
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/dashboard')) return page(req, res);
    res.writeHead(404).end();
  });
  await new Promise<void>((done) => server.listen(port, '127.0.0.1', done));
  return server;
}

function stop(server: Server): Promise<void> {
  return new Promise((done) => {
    server.closeAllConnections();
    server.close(() => done());
  });
}

const tile = (kind: string, name: string): string => `article[data-kind="${kind}"][data-name="${name}"]`;

/** Waits until the breaker's tile reads `state`, in the page as it is (no reload). */
async function breakerReads(page: Page, state: string): Promise<void> {
  await page.waitForFunction(
    ([selector, s]) => document.querySelector(`${selector} .state`)?.textContent === s,
    [tile('circuit-breaker', 'payments'), state] as const,
    { timeout: 5_000 },
  );
}

describe('the dashboard page in headless Chromium', () => {
  it('loads clean, follows a breaker open then closed without a reload, and reconnects after a server restart', async () => {
    const browser = await launch();
    const payments = circuitBreaker({ name: 'payments', breaker: consecutive(3), halfOpenAfterMs: 1_500 });
    const search = rateLimiter({ name: 'search per user', algorithm: fixedWindow({ limit: 8, windowMs: 1_000 }) });
    const pool = bulkhead({ name: 'pdf renderer', maxConcurrent: 4, maxQueue: 8 });
    const inbound = admissionController({ name: 'inbound', limit: 20 });
    const inventory = retry({ name: 'inventory', budget: retryBudget({ ratio: 0.2 }) });
    const shedder = loadShedder({ maxEventLoopDelayMs: 40, sampler: () => ({ eventLoopDelayMs: 3 + Math.random() * 4 }), sampleIntervalMs: 200 });
    const checks = health({ checks: [{ name: 'database', check: () => true }, { name: 'cache', critical: false, check: () => true }] });
    void inventory;
    let healthy = true;
    const traffic = setInterval(() => {
      void payments.execute(() => (healthy ? 'ok' : Promise.reject(new Error('down')))).catch(() => {});
      void search.consume('user:1');
      void pool.execute(() => new Promise((done) => setTimeout(done, 150)));
      const a = inbound.tryAcquire();
      if ('release' in a) setTimeout(() => a.release('success'), 120);
    }, 50);
    const probe = setInterval(() => void checks.readiness(), 500);
    let server = await listen();
    const { port } = server.address() as AddressInfo;
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    const consoleErrors: string[] = [];
    const failed: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    page.on('requestfailed', (r) => failed.push(`${r.url()} ${r.failure()?.errorText ?? ''}`));
    try {
      const response = await page.goto(`http://127.0.0.1:${port}/dashboard`);
      expect(response?.status()).toBe(200);
      await page.waitForSelector('#status[data-live="yes"]', { timeout: 5_000 });
      await breakerReads(page, 'closed');
      await page.evaluate(() => ((window as unknown as { loadedOnce: boolean }).loadedOnce = true));
      for (const selector of [tile('rate-limiter', 'search per user'), tile('bulkhead', 'pdf renderer'), tile('admission-controller', 'inbound'), tile('retry', 'inventory')]) {
        await page.waitForSelector(selector, { timeout: 5_000 });
      }

      healthy = false;
      await breakerReads(page, 'open');
      expect(await page.textContent(`${tile('circuit-breaker', 'payments')} [aria-label]`)).toBeDefined();
      await page.emulateMedia({ colorScheme: 'light' });
      await page.screenshot({ path: join(images, 'dashboard-light.png'), fullPage: true });
      healthy = true;
      await breakerReads(page, 'closed');
      expect(await page.evaluate(() => (window as unknown as { loadedOnce?: boolean }).loadedOnce)).toBe(true);
      await page.emulateMedia({ colorScheme: 'dark' });
      expect(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(15, 18, 23)');
      await page.screenshot({ path: join(images, 'dashboard-dark.png'), fullPage: true });
      // Keyboard: Tab reaches the tiles, each labelled with its kind and name.
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe('circuit breaker payments');
      // A phone's width: one column, nothing wider than the screen.
      await page.setViewportSize({ width: 390, height: 844 });
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      expect(consoleErrors).toEqual([]);
      expect(failed).toEqual([]);

      await stop(server);
      await page.waitForSelector('#status[data-live="no"]', { timeout: 5_000 });
      server = await listen(port);
      circuitBreaker({ name: 'after restart' });
      await page.waitForSelector(tile('circuit-breaker', 'after restart'), { timeout: 8_000 });
      await page.waitForSelector('#status[data-live="yes"]', { timeout: 5_000 });
      expect(await page.evaluate(() => (window as unknown as { loadedOnce?: boolean }).loadedOnce)).toBe(true);
      // While the server was down, only the stream may have failed: cut by the restart, then refused.
      expect(failed.filter((f) => !f.includes('/dashboard/events'))).toEqual([]);
      expect(consoleErrors.filter((e) => !/ERR_CONNECTION_REFUSED|ERR_INCOMPLETE_CHUNKED_ENCODING|EventSource|\/dashboard\/events/.test(e)), 'console errors').toEqual([]);
    } finally {
      clearInterval(traffic);
      clearInterval(probe);
      shedder.dispose();
      await new Promise((done) => setTimeout(done, 200)); // the last calls' own timers
      await context.close();
      await stop(server);
    }
  }, 30_000);
});
