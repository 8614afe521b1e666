export { bulkhead, BulkheadPolicy, type BulkheadMode, type BulkheadOptions, type BulkheadRejectedEvent } from './bulkhead.js';
