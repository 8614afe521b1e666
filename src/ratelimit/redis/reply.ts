// Reading a script's reply. A call that decided answers with one flat array: the server's time
// first when the call asked for it (whole ms × 4, a multiple of 4), then one answer per operation
// in the order sent — two integers when admitted (remaining, resetMs), three when denied
// (-1 - remaining, resetMs, retryAfterMs), so the sign tells them apart with no flag. A call that
// decided nothing answers with one integer, not an array: the server's time × 4 + the status.
// This file checks those shapes and reads the answers into decisions; what happens to the
// callers waiting for them is batch.ts.
import { limiterDecisionOf } from '../algorithms/shared.js';
import type { LimiterDecision } from '../store.js';
import { STATUS_DECIDED } from './scripts.js';

/** A reply that passed {@link isScriptReply}. */
export type ScriptReply = readonly unknown[];

/** Whether the answers from `at` on are exactly one per operation (two integers each, three for a denial). */
function answersAll(reply: ScriptReply, at: number, operations: number): boolean {
  for (let i = 0; i < operations; i++) {
    if (at >= reply.length) return false;
    at += Number(reply[at]) >= 0 ? 2 : 3;
  }
  return at === reply.length;
}

/**
 * Whether `reply` has the shape of a decided reply to `operations` operations: the time first
 * when `timed` (the call asked for it), then exactly one answer per operation.
 */
export function isScriptReply(reply: unknown, operations: number, timed: boolean): reply is ScriptReply {
  if (!Array.isArray(reply)) return false;
  if (!timed) return answersAll(reply, 0, operations);
  return reply.length > 0 && Number(reply[0]) % 4 === STATUS_DECIDED && answersAll(reply, 1, operations);
}

/** The server's clock, whole ms, read from a reply's time word (`time × 4 + status`). */
export function headerTimeMs(header: number): number {
  return (header - (header % 4)) / 4;
}

/** The status a time word carries: `STATUS_DECIDED`, or why the script changed nothing (see scripts.ts). */
export function headerStatus(header: number): number {
  return header % 4;
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

  /** `at`: where the answers start (1 after the time, 0 without it). */
  constructor(
    private readonly reply: ScriptReply,
    private at: number,
  ) {}

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
