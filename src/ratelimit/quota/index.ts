export {
  periodBounds,
  quotaPeriods,
  validateQuotaPeriod,
  validateTimeZone,
  validateWeekStartsOn,
  type PeriodBounds,
  type PeriodBoundsOptions,
  type QuotaPeriod,
  type Weekday,
} from './calendar.js';
export { quota, Quota, type QuotaOptions } from './quota.js';
