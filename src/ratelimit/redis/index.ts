export {
  redisStore,
  RedisStore,
  type RedisClientLike,
  type RedisStoreOptions,
  type StateLostReason,
  type StoreErrorKind,
  type StoreErrorMessage,
  type StoreErrorMode,
} from './redis-store.js';
export { scripts } from './scripts.js';
export { redisBreakerStore, RedisBreakerStore, type RedisBreakerStoreOptions } from './breaker-store.js';
// The Redis readiness check lives with the other health checks (it needs no ioredis import) and
// is published here, beside the store it checks.
export { redisCheck, type RedisCheckOptions, type RedisPingClient, type RedisStatusSource } from '../../health/redis-check.js';
