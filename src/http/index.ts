export {
  clientAddressResolver,
  parseAddress,
  subnetKey,
  UNKNOWN_CLIENT,
  type AddressedRequest,
  type ClientAddressOptions,
  type TrustProxy,
} from './client-address.js';
export { PROBLEM_TYPES } from './problem.js';
export { DEADLINE_HEADER, PRIORITY_HEADER } from './propagation.js';
export type { AdmissionAdapterOptions, AdmissionOptions, PropagationOptions } from './admission.js';
export type { HttpRateLimitOptions, QuotaUnit, RateLimitHeaders, RateLimitRuleOptions } from './rate-limit-options.js';
