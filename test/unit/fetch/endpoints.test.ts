import { describe, expect, it } from 'vitest';
import { joinPath, parseEndpoints, preferenceOrder } from '../../../src/adapters/fetch/endpoints.js';

describe('parseEndpoints', () => {
  it('normalises base URLs and keys them by origin', () => {
    expect(parseEndpoints('t', ['http://a:8080/api/', new URL('https://b')])).toEqual([
      { base: 'http://a:8080/api', origin: 'http://a:8080' },
      { base: 'https://b', origin: 'https://b' },
    ]);
  });

  it.each([
    ['not an array', 'http://a', TypeError, 'endpoints'],
    ['empty', [], RangeError, 'endpoints'],
    ['a number', [1], TypeError, 'endpoints[0]'],
    ['relative', ['/api'], TypeError, 'endpoints[0]'],
    ['ftp', ['ftp://a'], TypeError, 'endpoints[0]'],
    ['a query', ['http://a/?x=1'], TypeError, 'endpoints[0]'],
    ['credentials', ['http://u:p@a/'], TypeError, 'endpoints[0]'],
    ['a repeated origin', ['http://a/v1', 'http://a/v2'], TypeError, 'endpoints[1]'],
  ])('refuses %s', (_name, value, kind, option) => {
    expect(() => parseEndpoints('createFetch', value)).toThrow(kind);
    expect(() => parseEndpoints('createFetch', value)).toThrow(option);
  });

  it('drops an empty query or fragment mark from the base, so a path joins onto the path', () => {
    const [a, b] = parseEndpoints('t', ['http://a/api?', 'http://b/v1/#']);
    expect([a!.base, b!.base]).toEqual(['http://a/api', 'http://b/v1']);
    expect(joinPath(a!.base, '/users')).toBe('http://a/api/users');
  });

  it('refuses more than 64 endpoints', () => {
    const many = Array.from({ length: 65 }, (_, i) => `http://h${i}`);
    expect(() => parseEndpoints('createFetch', many)).toThrow(RangeError);
  });
});

describe('joinPath', () => {
  it("keeps the base's path", () => {
    expect(joinPath('http://a/api', '/users?x=1')).toBe('http://a/api/users?x=1');
    expect(joinPath('http://a/api', 'users/7')).toBe('http://a/api/users/7');
    expect(joinPath('http://a', '/')).toBe('http://a/');
    expect(joinPath('http://a', '')).toBe('http://a/');
    expect(joinPath('http://a/api', '?q=1')).toBe('http://a/api/?q=1');
  });

  it('refuses an absolute URL or a protocol-relative one', () => {
    expect(() => joinPath('http://a', 'http://evil/x')).toThrow(TypeError);
    expect(() => joinPath('http://a', '//evil/x')).toThrow(TypeError);
  });
});

describe('preferenceOrder (endpoint selection)', () => {
  it('starts from the primary', () => {
    expect(preferenceOrder([0, 0, 0])).toEqual([0, 1, 2]);
  });

  it('moves endpoints this call already used to the back, oldest use first', () => {
    expect(preferenceOrder([1, 0, 0])).toEqual([1, 2, 0]);
    expect(preferenceOrder([1, 2, 0])).toEqual([2, 0, 1]);
    expect(preferenceOrder([3, 1, 2])).toEqual([1, 2, 0]);
  });
});
