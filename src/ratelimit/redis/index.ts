export {
  redisStore,
  RedisStore,
  type RedisClientLike,
  type RedisStoreOptions,
  type StoreErrorMessage,
  type StoreErrorMode,
} from './redis-store.js';
export { scripts } from './scripts.js';
