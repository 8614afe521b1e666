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
export { redisCheck, type RedisCheckOptions, type RedisPingClient, type RedisStatusSource } from './health.js';
