import { describe, expect, it } from 'vitest';
import { currentAdmissionScope, parsePriority, withAdmissionScope } from '../../../src/index.js';
import { priorityLevel } from '../../../src/admission/priority.js';

describe('priority', () => {
  it('maps class names and levels to the same level, critical highest', () => {
    expect([parsePriority('critical'), parsePriority('degraded'), parsePriority('best-effort'), parsePriority('sheddable')]).toEqual([3, 2, 1, 0]);
    expect([parsePriority(3), parsePriority(0)]).toEqual([3, 0]);
  });

  it('answers undefined for anything else, and a checked option names the value', () => {
    for (const bad of ['Critical', '3', 4, -1, 1.5, null, undefined, {}]) expect(parsePriority(bad)).toBeUndefined();
    expect(() => priorityLevel('adaptiveConcurrency', 'priority', 'urgent')).toThrow(/adaptiveConcurrency: priority must be one of .* got "urgent"/);
  });
});

describe('admission scope', () => {
  it('is undefined outside, and inner fields override the outer scope while the rest carry through', async () => {
    expect(currentAdmissionScope()).toBeUndefined();
    await withAdmissionScope({ priority: 'critical', deadline: 1_000 }, async () => {
      await Promise.resolve();
      expect(currentAdmissionScope()).toEqual({ priority: 'critical', deadline: 1_000 });
      withAdmissionScope({ priority: 'sheddable' }, () => {
        expect(currentAdmissionScope()).toEqual({ priority: 'sheddable', deadline: 1_000 });
      });
      expect(currentAdmissionScope()?.priority).toBe('critical');
    });
    expect(currentAdmissionScope()).toBeUndefined();
  });
});
