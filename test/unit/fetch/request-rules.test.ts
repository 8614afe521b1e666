import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  isIdempotentMethod,
  isReplayableBody,
  isSafeMethod,
  neverSent,
  requestTraits,
} from '../../../src/adapters/fetch/request-rules.js';

describe('idempotency rules (row F11)', () => {
  it.each(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'get', 'Put'])('treats %s as idempotent', (method) => {
    expect(isIdempotentMethod(method)).toBe(true);
  });

  it.each(['POST', 'PATCH', 'CONNECT', 'post'])('does not treat %s as idempotent', (method) => {
    expect(isIdempotentMethod(method)).toBe(false);
  });

  it('hedges only safe methods', () => {
    expect(['GET', 'HEAD', 'OPTIONS'].every(isSafeMethod)).toBe(true);
    expect(['PUT', 'DELETE', 'POST'].some(isSafeMethod)).toBe(false);
  });

  it('retries a POST only with a non-empty Idempotency-Key', () => {
    expect(requestTraits('POST', new Headers(), '{}').retryable).toBe(false);
    expect(requestTraits('POST', new Headers({ 'Idempotency-Key': 'k-1' }), '{}').retryable).toBe(true);
    expect(requestTraits('POST', new Headers([['idempotency-key', 'k-1']]), '{}').retryable).toBe(true);
    expect(requestTraits('POST', new Headers({ 'idempotency-key': '  ' }), '{}').retryable).toBe(false);
    expect(requestTraits('PATCH', new Headers({ 'idempotency-key': 'k' }), 'x').hedgeable).toBe(false);
  });

  it('still resends a POST that never left, but never a streamed body', () => {
    expect(requestTraits('POST', new Headers(), '{}').resendable).toBe(true);
    expect(requestTraits('POST', new Headers(), new ReadableStream()).resendable).toBe(false);
  });

  it('never retries or hedges a streamed body, whatever the method or key', () => {
    const stream = new ReadableStream({ pull: (c) => c.close() });
    const traits = requestTraits('PUT', new Headers({ 'idempotency-key': 'k' }), stream);
    expect(traits).toEqual({ method: 'PUT', retryable: false, resendable: false, hedgeable: false, pinned: false });
    expect(requestTraits('GET', new Headers(), null)).toEqual({ method: 'GET', retryable: true, resendable: true, hedgeable: true, pinned: false });
  });

  it('pins a request that only its Idempotency-Key makes repeatable (issue 12): a keyed POST or PATCH, not a PUT', () => {
    const key = new Headers({ 'idempotency-key': 'k' });
    expect(requestTraits('POST', key, '{}').pinned).toBe(true);
    expect(requestTraits('patch', key, '{}').pinned).toBe(true);
    expect(requestTraits('PUT', key, '{}').pinned).toBe(false);
    expect(requestTraits('POST', new Headers(), '{}').pinned).toBe(false);
    expect(requestTraits('POST', key, new ReadableStream()).pinned).toBe(false); // never retried at all
  });
});

describe('isReplayableBody', () => {
  const replayable: [string, unknown][] = [
    ['no body', undefined],
    ['null', null],
    ['a string', 'text'],
    ['an ArrayBuffer', new ArrayBuffer(4)],
    ['a Uint8Array', new Uint8Array([1, 2])],
    ['a DataView', new DataView(new ArrayBuffer(2))],
    ['a Blob', new Blob(['x'])],
    ['URLSearchParams', new URLSearchParams({ a: '1' })],
    ['FormData', new FormData()],
  ];
  it.each(replayable)('replays %s', (_name, body) => {
    expect(isReplayableBody(body)).toBe(true);
  });

  it('does not replay a ReadableStream, a Node stream or an async iterable, and reads none of them', () => {
    const web = new ReadableStream({ pull: (c) => c.close() });
    const node = Readable.from(['a']);
    async function* gen(): AsyncGenerator<string> {
      yield 'a';
    }
    expect(isReplayableBody(web)).toBe(false);
    expect(isReplayableBody(node)).toBe(false);
    expect(isReplayableBody(gen())).toBe(false);
    expect(isReplayableBody({ some: 'object' })).toBe(false);
    expect(web.locked).toBe(false);
    expect(node.readableDidRead).toBe(false);
    node.destroy();
  });
});

describe('neverSent', () => {
  const failed = (cause: unknown): TypeError => new TypeError('fetch failed', { cause });
  it('recognises a refused or impossible connection', () => {
    expect(neverSent(failed(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })))).toBe(true);
    expect(neverSent(failed(Object.assign(new Error('dns'), { code: 'ENOTFOUND' })))).toBe(true);
    expect(neverSent(failed(Object.assign(new Error('t'), { code: 'UND_ERR_CONNECT_TIMEOUT' })))).toBe(true);
  });

  it('needs every address of an AggregateError to have been refused', () => {
    const refused = Object.assign(new Error('r'), { code: 'ECONNREFUSED' });
    const reset = Object.assign(new Error('x'), { code: 'ECONNRESET' });
    expect(neverSent(failed(new AggregateError([refused, refused])))).toBe(true);
    expect(neverSent(failed(new AggregateError([refused, reset])))).toBe(false);
  });

  it('does not count a reset or an unknown error: the request may have arrived', () => {
    expect(neverSent(failed(Object.assign(new Error('reset'), { code: 'ECONNRESET' })))).toBe(false);
    expect(neverSent(new Error('boom'))).toBe(false);
    expect(neverSent(undefined)).toBe(false);
  });
});

describe('neverSent: unreachable only at connect', () => {
  const failed = (cause: unknown): TypeError => new TypeError('fetch failed', { cause });
  it('counts EHOSTUNREACH / ENETUNREACH from connect, not from an established socket (the request may have left)', () => {
    const at = (code: string, syscall: string): Error => Object.assign(new Error(code), { code, syscall });
    expect(neverSent(failed(at('EHOSTUNREACH', 'connect')))).toBe(true);
    expect(neverSent(failed(at('ENETUNREACH', 'connect')))).toBe(true);
    expect(neverSent(failed(at('EHOSTUNREACH', 'read')))).toBe(false);
    expect(neverSent(failed(at('ENETUNREACH', 'write')))).toBe(false);
    expect(neverSent(failed(new AggregateError([at('EHOSTUNREACH', 'read')])))).toBe(false);
  });
});
