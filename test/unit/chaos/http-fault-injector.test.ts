// The framework-free decision behind the inbound fault injection (src/http/fault-injection.ts):
// which peers may ask for faults by header (trustProxy's rules), how the header is read, and the
// draw. The adapters' own tests run it in real servers.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';
import { channelNames } from '../../../src/index.js';
import { describe, expect, it } from 'vitest';
import { httpFaultInjector, type HttpFaultInjectedEvent, type HttpFaultInjectionOptions } from '../../../src/http/fault-injection.js';

/** A node request as far as the injector reads it: the socket's peer and the headers. */
function request(remoteAddress: string | undefined, headers: Record<string, string | string[]> = {}): IncomingMessage {
  return { socket: { remoteAddress }, headers } as unknown as IncomingMessage;
}

const asking = (remoteAddress: string | undefined, value: string | string[] = 'status', extra: Record<string, string> = {}): IncomingMessage =>
  request(remoteAddress, { 'x-bulwark-fault': value, ...extra });

/** An injector that never draws a fault: anything it injects was asked for. */
function onRequestOnly(header: HttpFaultInjectionOptions<IncomingMessage>['header'], more: Partial<HttpFaultInjectionOptions<IncomingMessage>> = {}) {
  return httpFaultInjector({ rate: 0, status: 503, header, ...more });
}

describe('S8 httpFaultInjector: who may ask for a fault by header', () => {
  it.each([
    ['loopback', '127.0.0.1', true],
    ['loopback', '::1', true],
    ['loopback', '::ffff:127.0.0.1', true],
    ['loopback', '10.0.0.1', false],
    [['10.0.0.0/8'], '10.1.2.3', true],
    [['10.0.0.0/8'], '::ffff:10.1.2.3', true],
    [['10.0.0.0/8'], '192.168.1.1', false],
    ['2001:db8::/32', '2001:db8:1::5', true],
    ['2001:db8::/32', '2001:db9::5', false],
    [1, '203.0.113.9', true],
    [3, '2001:db8::1', true],
    [['10.0.0.0/8'], undefined, false],
    [1, undefined, true],
  ] as const)('trustProxy %j: a peer at %s is believed: %s', (trustProxy, peer, believed) => {
    const faults = onRequestOnly({ trustProxy: trustProxy as never });
    expect(faults.decide(request(peer) as never, '/x', asking(peer)) !== undefined).toBe(believed);
  });

  it('does not let X-Forwarded-For make an untrusted peer trusted', () => {
    const faults = onRequestOnly({ trustProxy: ['10.0.0.0/8'] });
    const spoofed = asking('192.0.2.7', 'status', { 'x-forwarded-for': '10.0.0.1' });
    expect(faults.decide(spoofed, '/x', spoofed)).toBeUndefined();
  });

  it('reads no header at all without the header option', () => {
    const faults = httpFaultInjector({ rate: 0.5, status: 503, random: () => 0.99 });
    const req = asking('127.0.0.1');
    expect(faults.decide(req, '/x', req)).toBeUndefined();
  });
});

describe('httpFaultInjector: what a trusted header asks for', () => {
  const faults = httpFaultInjector({ rate: 0, latencyMs: 25, status: 502, header: { trustProxy: 'loopback', name: 'X-Chaos' } });
  const ask = (value: string | string[]) => {
    const req = request('127.0.0.1', { 'x-chaos': value });
    return faults.decide(req, '/x', req);
  };

  it.each([
    ['status', { latencyMs: 0, status: 502 }],
    ['latency', { latencyMs: 25, status: undefined }],
    ['LATENCY , Status', { latencyMs: 25, status: 502 }],
    [['latency', 'status'], { latencyMs: 25, status: 502 }],
  ] as const)('%j gets %j', (value, expected) => {
    const fault = ask(value as string | string[]);
    expect({ latencyMs: fault?.latencyMs, status: fault?.answer?.status }).toEqual(expected);
  });

  it.each(['abort', 'all', '*', '1', 'status=503', 'statuses', '', `${'x'.repeat(64)},status`])('%j gets nothing (unconfigured, unknown, or past the 64 characters read)', (value) => {
    expect(ask(value)).toBeUndefined();
  });

  it('still needs enabled, `when` and a non-probe path', () => {
    const when = { value: true };
    const guarded = onRequestOnly({ trustProxy: 'loopback' }, { when: () => when.value });
    const req = asking('127.0.0.1');
    expect(guarded.decide(req, '/x', req)).toBeDefined();
    expect(guarded.decide(req, '/readyz', req)).toBeUndefined();
    when.value = false;
    expect(guarded.decide(req, '/x', req)).toBeUndefined();
    when.value = true;
    guarded.enabled = false;
    expect(guarded.decide(req, '/x', req)).toBeUndefined();
  });

  it('tells onInjected whether a fault was asked for or drawn', () => {
    const values = [0.1];
    const both = httpFaultInjector({ rate: 0.5, abort: true, random: () => values.shift() ?? 0.9, header: { trustProxy: 'loopback' } });
    const events: HttpFaultInjectedEvent[] = [];
    both.onInjected((e) => events.push(e));
    const plain = request('127.0.0.1');
    const asked = asking('127.0.0.1', 'abort');
    expect(both.decide(plain, '/x', plain)?.abort).toBe(true);
    expect(both.decide(plain, '/x', plain)).toBeUndefined();
    expect(both.decide(asked, '/x', asked)?.abort).toBe(true);
    expect(events).toEqual([
      { policy: 'fault-injection', kind: 'abort', latencyMs: 0, requested: false },
      { policy: 'fault-injection', kind: 'abort', latencyMs: 0, requested: true },
    ]);
  });
});

describe('httpFaultInjector: telemetry', () => {
  it('publishes each injection on bulwark:chaos:injected, in the policy\'s message shape', () => {
    const messages: unknown[] = [];
    const listener = (m: unknown): void => void messages.push(m);
    subscribe(channelNames.faultInjected, listener);
    try {
      const faults = httpFaultInjector({ rate: 1, latencyMs: 5, status: 503, name: 'edge' });
      const req = request('203.0.113.9');
      faults.decide(req, '/x', req);
    } finally {
      unsubscribe(channelNames.faultInjected, listener);
    }
    expect(messages).toEqual([{ policy: 'edge', kind: 'status', latencyMs: 5 }]);
  });
});

describe('httpFaultInjector: rate accuracy', () => {
  it('injects 5 % ± 0.3 % of 100,000 requests at rate 0.05, with the default random source', () => {
    const faults = httpFaultInjector({ rate: 0.05, status: 503 });
    const req = request('203.0.113.9');
    let injected = 0;
    for (let i = 0; i < 100_000; i++) if (faults.decide(req, '/x', req) !== undefined) injected++;
    // ±300 of 100,000; the binomial σ is ≈ 69, so ~4.4 σ.
    expect(injected).toBeGreaterThanOrEqual(4_700);
    expect(injected).toBeLessThanOrEqual(5_300);
  });
});
