/**
 * The label value that stands for every value beyond a label's cap (see
 * `MetricsOptions.maxLabelValues`).
 * @example
 * // PromQL: how many executions went to policies past the cap
 * const query = `sum(rate(bulwark_executions_total{policy="${OVERFLOW_LABEL_VALUE}"}[5m]))`;
 */
export const OVERFLOW_LABEL_VALUE = '_other';

/**
 * A hard cap on the distinct values of a label name, as a function from a value to the value
 * recorded, with `release` to give a value's place back once every series holding it is gone.
 * @example
 * const cap: LabelCap = labelCap(100);
 */
export interface LabelCap {
  (name: string, value: string): string;
  /** Frees `value`'s place under `name`, for a value whose series were all removed. */
  release(name: string, value: string): void;
}

/**
 * A hard cap on the distinct values of each label name: the first `max` values of a label are
 * kept as they are, every later one becomes {@link OVERFLOW_LABEL_VALUE}. A value is kept until
 * it is released (its series were removed, see `bulwark:fetch:origin-evicted`), so a series never
 * changes its labels while it is being counted.
 * @example
 * const cap = labelCap(2);
 * cap('policy', 'a'); cap('policy', 'b'); // 'a', 'b'
 * cap('policy', 'c'); // '_other'
 * cap.release('policy', 'a');
 * cap('policy', 'c'); // 'c'
 */
export function labelCap(max: number): LabelCap {
  const seen = new Map<string, Set<string>>();
  const cap = (name: string, value: string): string => {
    if (value === OVERFLOW_LABEL_VALUE) return value;
    let values = seen.get(name);
    if (values === undefined) seen.set(name, (values = new Set()));
    if (values.has(value)) return value;
    if (values.size >= max) return OVERFLOW_LABEL_VALUE;
    values.add(value);
    return value;
  };
  return Object.assign(cap, { release: (name: string, value: string) => void seen.get(name)?.delete(value) });
}
