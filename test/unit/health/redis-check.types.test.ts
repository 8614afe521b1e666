// Compile-time checks: the structural types accept the real classes (no runtime import of ioredis).
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { redisCheck, type RedisStore } from '../../../src/ratelimit/redis/index.js';

describe('redisCheck types', () => {
  it('accepts an ioredis client and a RedisStore', () => {
    const typed = (client: Redis, store: RedisStore) => [redisCheck(client), redisCheck(store)];
    expect(typeof typed).toBe('function');
  });
});
