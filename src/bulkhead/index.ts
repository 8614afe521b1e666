export { bulkhead, BulkheadPolicy, type BulkheadOptions, type BulkheadRejectedEvent } from './bulkhead.js';
