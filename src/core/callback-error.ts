import diagnosticsChannel from 'node:diagnostics_channel';
import { channelNames } from './diagnostics.js';

/**
 * Message published on `bulwark:callback:error` when a user's function throws where the throw
 * cannot reject the call it belongs to: an event listener, a breaker's `handle` while the call
 * already rejects with its own error.
 * @example
 * subscribe(channelNames.callbackError, (m) => logger.error((m as CallbackErrorMessage).error, 'bulwark callback threw'));
 */
export interface CallbackErrorMessage {
  /** What called the function: a policy's name, or its kind when it has none. */
  readonly policy: string;
  /** Which function: `'listener'`, `'handle'`, ... */
  readonly callback: string;
  /** What it threw. */
  readonly error: unknown;
}

const channel = diagnosticsChannel.channel(channelNames.callbackError);
/** Policies and callbacks already warned about: one process warning each, however often they throw. */
const warned = new Set<string>();
const MAX_WARNED = 1_000;

/**
 * Reports a throw from a user's function that has no call to reject. It never throws and never
 * becomes an uncaught exception (which would stop a server with no handler): subscribers of
 * `bulwark:callback:error` get every one; with none, the process gets one warning per policy and
 * callback (`process.emitWarning`, code `BULWARK_CALLBACK_ERROR`), so a listener that throws on
 * every event cannot flood the log.
 */
export function reportCallbackError(policy: string, callback: string, error: unknown): void {
  if (channel.hasSubscribers) {
    const message: CallbackErrorMessage = { policy, callback, error };
    channel.publish(message);
    return;
  }
  const id = `${policy}\u0000${callback}`;
  if (warned.has(id) || warned.size >= MAX_WARNED) return;
  warned.add(id);
  const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  try {
    process.emitWarning(`${policy}: a ${callback} threw (${what}); later throws of it are published on "${channelNames.callbackError}" only`, {
      code: 'BULWARK_CALLBACK_ERROR',
    });
  } catch {
    // A warning listener that throws is not ours to surface.
  }
}
