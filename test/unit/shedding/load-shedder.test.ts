import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { channelNames } from '../../../src/core/diagnostics.js';
import { LoadShedder, loadShedder, type LoadSample } from '../../../src/shedding/index.js';

function wait(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function injected(options: Record<string, unknown>): { shedder: LoadShedder; set(sample: LoadSample): void; calls(): number } {
  let sample: LoadSample = {};
  let calls = 0;
  const shedder = loadShedder({
    ...options,
    sampler: () => {
      calls++;
      return sample;
    },
  });
  return { shedder, set: (s) => (sample = s), calls: () => calls };
}

describe('loadShedder with an injected sampler', () => {
  it('reports null until a sample passes a threshold, then the reason with its values', () => {
    const { shedder, set } = injected({ maxEventLoopDelayMs: 100 });
    try {
      expect(shedder.check()).toBeNull();
      set({ eventLoopDelayMs: 100 });
      expect(shedder.update()).toBeNull();
      set({ eventLoopDelayMs: 150 });
      expect(shedder.update()).toBe('eventLoopDelay');
      expect(shedder.check()).toBe('eventLoopDelay');
      expect(shedder.pressure).toEqual({ reason: 'eventLoopDelay', value: 150, threshold: 100 });
      set({ eventLoopDelayMs: 20 });
      expect(shedder.update()).toBeNull();
      expect(shedder.pressure).toBeNull();
    } finally {
      shedder.dispose();
    }
  });

  it.each<[Record<string, number>, LoadSample, string | null]>([
    [{ maxEventLoopUtilization: 0.9 }, { eventLoopUtilization: 0.95 }, 'eventLoopUtilization'],
    [{ maxEventLoopUtilization: 0.9 }, { eventLoopUtilization: 0.5 }, null],
    [{ maxHeapUsedBytes: 1_000 }, { heapUsedBytes: 1_001 }, 'heapUsed'],
    [{ maxHeapUsedRatio: 0.8 }, { heapUsedBytes: 90, heapLimitBytes: 100 }, 'heapUsed'],
    [{ maxHeapUsedRatio: 0.8 }, { heapUsedBytes: 70, heapLimitBytes: 100 }, null],
    [{ maxHeapUsedRatio: 0.8 }, { heapUsedBytes: 70 }, null],
    [{ maxRssBytes: 10 }, { rssBytes: 11 }, 'rss'],
    [{ maxEventLoopDelayMs: 50, maxRssBytes: 10 }, { eventLoopDelayMs: 60, rssBytes: 11 }, 'eventLoopDelay'],
    [{ maxEventLoopDelayMs: 50 }, { rssBytes: 1e12 }, null],
    [{ maxEventLoopDelayMs: 50 }, { eventLoopDelayMs: Number.NaN }, null],
  ])('thresholds %j, sample %j → %s', (options, sample, expected) => {
    const { shedder, set } = injected(options);
    try {
      set(sample);
      expect(shedder.update()).toBe(expected);
    } finally {
      shedder.dispose();
    }
  });

  it('samples on one unref\'d, self-rearming timer, and stops when disposed', async () => {
    const { shedder, set, calls } = injected({ maxEventLoopDelayMs: 10, sampleIntervalMs: 10 });
    set({ eventLoopDelayMs: 50 });
    await wait(60);
    expect(calls()).toBeGreaterThanOrEqual(2);
    expect(shedder.check()).toBe('eventLoopDelay');
    shedder.dispose();
    const after = calls();
    await wait(40);
    expect(calls()).toBe(after);
    expect(shedder.check()).toBeNull();
    expect(shedder.update()).toBeNull();
    shedder.dispose();
  });

  it('is disposable', () => {
    const { shedder, set } = injected({ maxRssBytes: 1 });
    set({ rssBytes: 2 });
    shedder.update();
    shedder[Symbol.dispose]();
    expect(shedder.check()).toBeNull();
  });

  it('keeps the last result when the sampler throws inside the timer, without crashing', async () => {
    let n = 0;
    const shedder = loadShedder({
      maxRssBytes: 1,
      sampleIntervalMs: 10,
      sampler: () => {
        n++;
        if (n > 1) throw new Error('sensor broke');
        return { rssBytes: 5 };
      },
    });
    try {
      shedder.update();
      await wait(40);
      expect(n).toBeGreaterThan(2);
      expect(shedder.check()).toBe('rss');
      expect(() => shedder.update()).toThrow('sensor broke');
    } finally {
      shedder.dispose();
    }
  });

  it('publishes rejections on bulwark:shedding:rejected only when someone listens', () => {
    const { shedder, set } = injected({ maxEventLoopUtilization: 0.5 });
    const seen: unknown[] = [];
    const listener = (message: unknown): void => {
      seen.push(message);
    };
    try {
      set({ eventLoopUtilization: 0.75 });
      shedder.update();
      shedder.reject();
      subscribe(channelNames.sheddingRejected, listener);
      shedder.reject();
      expect(seen).toEqual([{ reason: 'eventLoopUtilization', value: 0.75, threshold: 0.5, mode: 'enforce' }]);
    } finally {
      unsubscribe(channelNames.sheddingRejected, listener);
      shedder.dispose();
    }
  });

  it('rejects bad options, naming them', () => {
    expect(() => loadShedder(null as never)).toThrow(TypeError);
    expect(() => loadShedder({ maxEventLoopDelayMs: 0 })).toThrow(/maxEventLoopDelayMs/);
    expect(() => loadShedder({ maxEventLoopDelayMs: Number.NaN })).toThrow(RangeError);
    expect(() => loadShedder({ maxEventLoopUtilization: 1.5 })).toThrow(/maxEventLoopUtilization/);
    expect(() => loadShedder({ maxEventLoopUtilization: 0 })).toThrow(RangeError);
    expect(() => loadShedder({ maxHeapUsedRatio: -0.1 })).toThrow(/maxHeapUsedRatio/);
    expect(() => loadShedder({ maxHeapUsedBytes: -1 })).toThrow(/maxHeapUsedBytes/);
    expect(() => loadShedder({ maxRssBytes: '1' as never })).toThrow(TypeError);
    expect(() => loadShedder({ maxRssBytes: 1, sampleIntervalMs: 5 })).toThrow(/sampleIntervalMs/);
    expect(() => loadShedder({ maxRssBytes: 1, sampleIntervalMs: 2 ** 31 })).toThrow(RangeError);
    expect(() => loadShedder({ maxRssBytes: 1, retryAfterSeconds: 1.5 })).toThrow(/retryAfterSeconds/);
    expect(() => loadShedder({ maxRssBytes: 1, sampler: 5 as never })).toThrow(/sampler/);
    expect(() => loadShedder({ maxRssBytes: 1, maxDelay: 5 } as never)).toThrow(/unknown option "maxDelay"/);
  });

  it('with sustainedSamples, sheds only after that many samples in a row over a threshold, and stops at the first one under', () => {
    const { shedder, set } = injected({ maxEventLoopDelayMs: 100, sustainedSamples: 3 });
    try {
      expect(shedder.sustainedSamples).toBe(3);
      set({ eventLoopDelayMs: 500 });
      expect(shedder.update()).toBeNull();
      expect(shedder.update()).toBeNull();
      set({ eventLoopDelayMs: 5 }); // the run is broken: counting starts again
      expect(shedder.update()).toBeNull();
      set({ eventLoopDelayMs: 500 });
      expect(shedder.update()).toBeNull();
      expect(shedder.update()).toBeNull();
      expect(shedder.update()).toBe('eventLoopDelay');
      expect(shedder.update()).toBe('eventLoopDelay');
      set({ eventLoopDelayMs: 5 });
      expect(shedder.update()).toBeNull();
    } finally {
      shedder.dispose();
    }
  });

  it('with no threshold given, sheds on the measured recommendation: event-loop delay over 30 ms for 2 samples in a row', () => {
    for (const options of [{}, { sampleIntervalMs: 500 }]) {
      const { shedder, set } = injected(options);
      try {
        expect(shedder.sustainedSamples).toBe(2);
        set({ eventLoopDelayMs: 29 });
        expect(shedder.update()).toBeNull();
        expect(shedder.update()).toBeNull();
        set({ eventLoopDelayMs: 31 });
        expect(shedder.update()).toBeNull();
        expect(shedder.update()).toBe('eventLoopDelay');
        expect(shedder.pressure).toEqual({ reason: 'eventLoopDelay', value: 31, threshold: 30 });
      } finally {
        shedder.dispose();
      }
    }
    const built = loadShedder();
    try {
      expect(built.sustainedSamples).toBe(2);
    } finally {
      built.dispose();
    }
  });

  it('keeps sustainedSamples at 1 when a threshold is given, and lets the recommendation take another count', () => {
    const given = loadShedder({ maxRssBytes: 1e15 });
    const counted = injected({ sustainedSamples: 3 });
    try {
      expect(given.sustainedSamples).toBe(1);
      expect(counted.shedder.sustainedSamples).toBe(3);
    } finally {
      given.dispose();
      counted.shedder.dispose();
    }
  });

  it.each([0, 1.5, '2', null, 1001])('refuses sustainedSamples %j, naming it', (bad) => {
    expect(() => loadShedder({ maxRssBytes: 1, sustainedSamples: bad as never })).toThrow(/"sustainedSamples"/);
  });

  it('defaults Retry-After to 10 seconds', () => {
    const shedder = loadShedder({ maxRssBytes: 1e15 });
    try {
      expect(shedder.retryAfter).toBe('10');
      expect(shedder.sampleIntervalMs).toBe(1_000);
    } finally {
      shedder.dispose();
    }
  });
});

describe('loadShedder with the built-in sampler', () => {
  it('reports event-loop delay after the loop is blocked', async () => {
    const shedder = loadShedder({ maxEventLoopDelayMs: 50, sampleIntervalMs: 50 });
    try {
      await wait(60);
      expect(shedder.check()).toBeNull();
      const until = Date.now() + 400;
      while (Date.now() < until) {
        // Busy: the event loop cannot turn.
      }
      // The first sample after the block carries the delay.
      let reason = shedder.check();
      for (let i = 0; i < 20 && reason === null; i++) {
        await wait(10);
        reason = shedder.check();
      }
      expect(reason).toBe('eventLoopDelay');
      expect(shedder.pressure!.value).toBeGreaterThan(50);
    } finally {
      shedder.dispose();
    }
  });

  it('does not judge its first reading, which covers the app start-up (regression: start-up work shed a second of healthy traffic)', () => {
    const shedder = loadShedder({ maxEventLoopUtilization: 0.9 });
    const busy = (ms: number): void => {
      const until = performance.now() + ms;
      while (performance.now() < until) {
        // Busy: start-up work, the event loop cannot turn.
      }
    };
    try {
      busy(200);
      expect(shedder.update()).toBeNull();
      busy(200);
      // From the second reading on, a busy loop is judged.
      expect(shedder.update()).toBe('eventLoopUtilization');
      expect(shedder.pressure!.value).toBeGreaterThan(0.9);
    } finally {
      shedder.dispose();
    }
  });

  it('measures utilization, heap and rss without tripping normal thresholds', () => {
    const shedder = loadShedder({ maxEventLoopUtilization: 1, maxHeapUsedRatio: 1, maxHeapUsedBytes: 2 ** 50, maxRssBytes: 2 ** 50 });
    try {
      expect(shedder.update()).toBeNull();
      expect(shedder.update()).toBeNull();
    } finally {
      shedder.dispose();
    }
  });
});
