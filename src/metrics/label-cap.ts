/**
 * The label value that stands for every value beyond a label's cap (see
 * `MetricsOptions.maxLabelValues`).
 * @example
 * // PromQL: how many executions went to policies past the cap
 * const query = `sum(rate(bulwark_executions_total{policy="${OVERFLOW_LABEL_VALUE}"}[5m]))`;
 */
export const OVERFLOW_LABEL_VALUE = '_other';

/**
 * A hard cap on the distinct values of each label name: the first `max` values of a label are
 * kept as they are, every later one becomes {@link OVERFLOW_LABEL_VALUE}. Values are never
 * forgotten, so a series never changes its labels while it is being counted.
 * @example
 * const cap = labelCap(2);
 * cap('policy', 'a'); cap('policy', 'b'); // 'a', 'b'
 * cap('policy', 'c'); // '_other'
 */
export function labelCap(max: number): (name: string, value: string) => string {
  const seen = new Map<string, Set<string>>();
  return (name, value) => {
    if (value === OVERFLOW_LABEL_VALUE) return value;
    let values = seen.get(name);
    if (values === undefined) seen.set(name, (values = new Set()));
    if (values.has(value)) return value;
    if (values.size >= max) return OVERFLOW_LABEL_VALUE;
    values.add(value);
    return value;
  };
}
