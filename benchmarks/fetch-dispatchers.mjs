// undici dispatchers for the fetch benchmarks (fetch-overhead.mjs, fetch-plumbing.mjs --undici),
// handed to global fetch as init's `dispatcher`.

/** A dispatcher that answers every request on the next tick: 200, a 2-byte body, no socket. */
export function stubDispatcher() {
  const raw = [Buffer.from('content-type'), Buffer.from('text/plain'), Buffer.from('content-length'), Buffer.from('2')];
  const body = Buffer.from('ok');
  const ignore = () => {};
  return {
    dispatch(_options, handler) {
      process.nextTick(() => {
        handler.onConnect(ignore);
        handler.onResponseStarted?.();
        handler.onHeaders(200, raw, ignore, 'OK');
        handler.onData(body);
        handler.onComplete([]);
      });
      return true;
    },
  };
}

/**
 * Wraps `inner` so that the request keeps the abort function undici hands its handler at connect:
 * a fetch that can be aborted without an AbortSignal (one object and one closure per request).
 * Measured as a way an attempt timeout could abort; not what bulwark does.
 */
export function abortableDispatcher(inner) {
  const slot = { abort: undefined };
  return {
    dispatch(options, handler) {
      const wrapped = Object.create(handler);
      wrapped.onConnect = (abort, context) => {
        slot.abort = abort;
        return handler.onConnect(abort, context);
      };
      return inner.dispatch(options, wrapped);
    },
  };
}

/** undici's global dispatcher (Node's fetch makes it at its first request). */
export function globalDispatcher() {
  const found = globalThis[Symbol.for('undici.globalDispatcher.1')];
  if (found === undefined) throw new Error('no undici global dispatcher yet: make one request first');
  return found;
}
