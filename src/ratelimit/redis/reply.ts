// Reading a script's reply. Every script answers a batch with one flat array: the server's time
// (seconds, then microseconds), a status, and, when the status says the batch was decided, one
// answer per operation in the order sent — two integers when admitted (remaining, resetMs),
// three when denied (-1 - remaining, resetMs, retryAfterMs), so the sign tells them apart with no
// flag. This file checks that shape and reads the answers into decisions; what happens to the
// callers waiting for them is batch.ts.
import { limiterDecisionOf } from '../algorithms/shared.js';
import type { LimiterDecision } from '../store.js';
import { STATUS_DECIDED } from './scripts.js';

/** A reply that passed {@link isScriptReply}. */
export type ScriptReply = readonly unknown[];

/** Whether a decided reply holds exactly one answer per operation (two integers each, three for a denial). */
function answersAll(reply: ScriptReply, operations: number): boolean {
  let at = 3;
  for (let i = 0; i < operations; i++) {
    if (at >= reply.length) return false;
    at += Number(reply[at]) >= 0 ? 2 : 3;
  }
  return at === reply.length;
}

/**
 * Whether `reply` has the shape of a script's reply to `operations` operations: the time and a
 * status, and, when decided, exactly one answer per operation.
 */
export function isScriptReply(reply: unknown, operations: number): reply is ScriptReply {
  return Array.isArray(reply) && reply.length >= 3 && (Number(reply[2]) !== STATUS_DECIDED || answersAll(reply, operations));
}

/** The server's clock when the script ran, in ms. */
export function serverTimeMs(reply: ScriptReply): number {
  return Number(reply[0]) * 1000 + Number(reply[1]) / 1000;
}

/** `STATUS_DECIDED`, or why the script changed nothing (see scripts.ts). */
export function replyStatus(reply: ScriptReply): number {
  return Number(reply[2]);
}

/**
 * Reads a decided reply's answers in order, one per {@link ReplyReader.next}, into its own fields:
 * no object per answer, only the decisions handed to callers.
 */
export class ReplyReader {
  allowed = false;
  remaining = 0;
  resetMs = 0;
  retryAfterMs = 0;
  private at = 3;

  constructor(private readonly reply: ScriptReply) {}

  /** Moves to the next operation's answer. */
  next(): void {
    const reply = this.reply;
    const at = this.at;
    const first = Number(reply[at]);
    const allowed = first >= 0;
    this.allowed = allowed;
    this.remaining = allowed ? first : -1 - first;
    this.resetMs = Number(reply[at + 1]);
    this.retryAfterMs = allowed ? 0 : Number(reply[at + 2]);
    this.at = at + (allowed ? 2 : 3);
  }

  /** The current answer as a decision of the Redis store, `limit` as the algorithm reports it. */
  decision(limit: number): LimiterDecision {
    return limiterDecisionOf(this.allowed, limit, this.remaining, this.resetMs, this.retryAfterMs, 'redis');
  }
}
