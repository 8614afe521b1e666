export {
  clientAddressResolver,
  parseAddress,
  subnetKey,
  UNKNOWN_CLIENT,
  type AddressedRequest,
  type ClientAddressOptions,
  type TrustProxy,
} from './client-address.js';
export type { HttpRateLimitOptions, RateLimitHeaders, RateLimitRuleOptions } from './rate-limit-rule.js';
