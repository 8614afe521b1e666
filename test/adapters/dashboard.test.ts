// bulwark/dashboard over node:http, Express and Fastify (issue 17 §2): one self-contained page
// under a nonce CSP, a stream of inspect() once a second shared by every viewer, loopback or
// token access, and nothing left running or subscribed once the last viewer goes.
import diagnosticsChannel from 'node:diagnostics_channel';
import { createServer, get as httpGet, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { dashboard } from '../../src/dashboard/index.js';
import { addViewer, MAX_UNSENT_BYTES, samplerState } from '../../src/dashboard/sampler.js';
import { channelNames, circuitBreaker, consecutive } from '../../src/index.js';

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function serve(listener: RequestListener): Promise<number> {
  const server: Server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(resolve);
  }));
  return (server.address() as AddressInfo).port;
}

/** A request whose peer reads as another host, as one through a non-loopback interface would. */
const fromAfar = (handle: RequestListener): RequestListener => (req, res) => {
  Object.defineProperty(req.socket, 'remoteAddress', { value: '203.0.113.9', configurable: true });
  handle(req, res);
};

/** Waits (up to 2 s) until the server has seen `n` viewers: a client's close reaches it a moment later. */
async function viewersBecome(n: number): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (samplerState().viewers !== n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

interface Stream {
  readonly response: IncomingMessage;
  /** Resolves with the next `data:` event, parsed. */
  next(): Promise<{ at: number; recordingSince?: number; policies: { kind: string; name: string; state: Record<string, unknown> }[] }>;
  close(): Promise<void>;
}

function open(port: number, path: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path }, (response) => {
      let buffer = '';
      const waiting: ((value: never) => void)[] = [];
      const events: string[] = [];
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.startsWith('data: ')) events.push(block.slice(6));
        }
        while (events.length > 0 && waiting.length > 0) waiting.shift()!(JSON.parse(events.shift()!) as never);
      });
      resolve({
        response,
        next: () => (events.length > 0 ? Promise.resolve(JSON.parse(events.shift()!)) : new Promise((r) => waiting.push(r))),
        close: () => new Promise((r) => {
          response.once('close', () => setImmediate(r));
          response.destroy();
        }),
      });
    }).once('error', reject);
  });
}

describe('dashboard() page', () => {
  it('serves one self-contained page under a CSP whose fresh nonce is on its only style and script', async () => {
    const port = await serve(dashboard({ title: 'orders <api>' }));
    const pages = await Promise.all([fetch(`http://127.0.0.1:${port}/`), fetch(`http://127.0.0.1:${port}/`)]);
    const [a, b] = pages;
    expect(a!.status).toBe(200);
    expect(a!.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(a!.headers.get('cache-control')).toBe('no-store');
    const csp = a!.headers.get('content-security-policy')!;
    const nonce = /script-src 'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)![1]!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain(`style-src 'nonce-${nonce}'`);
    expect(b!.headers.get('content-security-policy')).not.toContain(nonce);
    const html = await a!.text();
    await b!.text();
    expect(html.match(/<script\b[^>]*>/g)).toEqual([`<script nonce="${nonce}">`]);
    expect(html.match(/<style\b[^>]*>/g)).toEqual([`<style nonce="${nonce}">`]);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).not.toMatch(/ style="/);
    expect(html).toContain('<h1>orders &lt;api&gt;</h1>');
    expect(html).toContain('prefers-color-scheme: dark');
  });

  it('answers other methods with 405', async () => {
    const port = await serve(dashboard());
    const res = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
    await res.text();
  });
});

describe('dashboard() access', () => {
  it('answers 404 to a client that is not on this host when no token is set', async () => {
    const port = await serve(fromAfar(dashboard()));
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.status).toBe(404);
    expect(await res.text()).toBe('Not Found\n');
  });

  it('lets a remote client in with the token, as a Bearer header or ?token=, and answers 403 without it', async () => {
    const token = 'a-long-enough-token-1234';
    const port = await serve(fromAfar(dashboard({ token })));
    const url = `http://127.0.0.1:${port}/`;
    expect((await fetch(url, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await fetch(`${url}?token=${token}`)).status).toBe(200);
    expect((await fetch(`${url}?token=wrong-token-wrong-token`)).status).toBe(403);
    expect((await fetch(url)).status).toBe(403);
  });

  it('with loopback: false, asks a client on this host for the token too', async () => {
    const port = await serve(dashboard({ token: 'a-long-enough-token-1234', loopback: false }));
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(403);
    expect((await fetch(`http://127.0.0.1:${port}/?token=a-long-enough-token-1234`)).status).toBe(200);
  });

  it('refuses bad options with an error naming the option and the value', () => {
    expect(() => dashboard({ token: 'short' })).toThrow('dashboard: option "token" must be a string of 16 characters or more, got a string of 5 characters');
    expect(() => dashboard({ token: 42 as never })).toThrow('option "token" must be a string of 16 characters or more, got 42');
    expect(() => dashboard({ loopback: 'yes' as never })).toThrow('option "loopback" must be a boolean, got "yes"');
    expect(() => dashboard({ loopback: false })).toThrow('option "loopback" is false and no "token" is set');
    expect(() => dashboard({ title: '' })).toThrow('option "title" must be a string of 1 to 100 characters, got ""');
    expect(() => dashboard({ colour: 'red' } as never)).toThrow(/dashboard: unknown option "colour"/);
    expect(() => dashboard(5 as never)).toThrow(TypeError);
  });
});

describe('dashboard() stream', () => {
  it('sends inspect() at once and then once a second, to every viewer from one sampler', async () => {
    const breaker = circuitBreaker({ name: 'stream-breaker', breaker: consecutive(1) });
    const port = await serve(dashboard());
    const one = await open(port, '/events');
    expect(one.response.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    const first = await one.next();
    expect(first.policies).toContainEqual(expect.objectContaining({ kind: 'circuit-breaker', name: 'stream-breaker', state: expect.objectContaining({ state: 'closed' }) }));
    const two = await open(port, '/dash/events');
    await two.next();
    expect(samplerState()).toEqual({ viewers: 2, running: true });
    await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {});
    const [a, b] = await Promise.all([one.next(), two.next()]);
    expect(a.at).toBe(b.at);
    expect(a.policies.find((p) => p.name === 'stream-breaker')!.state.state).toBe('open');
    await one.close();
    await viewersBecome(1);
    expect(samplerState()).toEqual({ viewers: 1, running: true });
    await two.close();
    await viewersBecome(0);
    expect(samplerState()).toEqual({ viewers: 0, running: false });
  });

  it('leaves no timer and no channel subscription once the last viewer disconnects', async () => {
    const names = Object.values(channelNames).filter((n) => n !== channelNames.execute);
    const before = names.map((n) => diagnosticsChannel.channel(n).hasSubscribers);
    const port = await serve(dashboard());
    const viewer = await open(port, '/events');
    await viewer.next();
    expect(diagnosticsChannel.channel(channelNames.circuitState).hasSubscribers).toBe(true);
    await viewer.close();
    await viewersBecome(0);
    expect(samplerState()).toEqual({ viewers: 0, running: false });
    expect(names.map((n) => diagnosticsChannel.channel(n).hasSubscribers)).toEqual(before);
    expect(diagnosticsChannel.tracingChannel(channelNames.execute).start.hasSubscribers).toBe(false);
  });
});

describe('the shared sampler', () => {
  it('disconnects a viewer that stopped reading once more than 1 MiB waits for it, and stops when it was the last', async () => {
    let destroyed = 0;
    const viewer = {
      writableLength: 0,
      write: (): boolean => true,
      destroy: (): void => {
        destroyed++;
        remove();
      },
    };
    const remove = addViewer(viewer);
    viewer.writableLength = MAX_UNSENT_BYTES + 1;
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(destroyed).toBe(1);
    expect(samplerState()).toEqual({ viewers: 0, running: false });
  });
});

describe('dashboard() in frameworks', () => {
  it('mounts in Express with app.use(path, handler)', async () => {
    const app = express();
    app.use('/ops/dashboard', dashboard());
    const port = await serve(app);
    const page = await fetch(`http://127.0.0.1:${port}/ops/dashboard`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<main>');
    const viewer = await open(port, '/ops/dashboard/events');
    expect((await viewer.next()).policies).toBeInstanceOf(Array);
    await viewer.close();
  });

  it('serves from Fastify routes that hand the raw request over', async () => {
    const app = fastify();
    const handle = dashboard();
    const route = (request: { raw: IncomingMessage }, reply: { hijack(): void; raw: Parameters<typeof handle>[1] }): void => {
      reply.hijack();
      handle(request.raw, reply.raw);
    };
    app.get('/dashboard', route);
    app.get('/dashboard/events', route);
    await app.listen({ port: 0, host: '127.0.0.1' });
    closers.push(() => app.close());
    const port = (app.server.address() as AddressInfo).port;
    const page = await fetch(`http://127.0.0.1:${port}/dashboard`);
    expect(page.headers.get('content-security-policy')).toContain('nonce-');
    await page.text();
    const viewer = await open(port, '/dashboard/events');
    expect((await viewer.next()).policies).toBeInstanceOf(Array);
    await viewer.close();
  });
});
