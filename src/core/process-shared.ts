/**
 * One object per process under `Symbol.for(name)` on `globalThis`, made by `make` the first time:
 * the ESM and CommonJS builds of bulwark loaded side by side then share it (the paths bulwark
 * serves, the healths its probe routes serve, the admission scope).
 */
export function processShared<T extends object>(name: string, make: () => T): T {
  const key = Symbol.for(name);
  const holder = globalThis as unknown as Record<symbol, T | undefined>;
  let value = holder[key];
  if (value === undefined) {
    value = make();
    Object.defineProperty(globalThis, key, { value, enumerable: false, configurable: true, writable: false });
  }
  return value;
}
