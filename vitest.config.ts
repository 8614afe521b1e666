import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/readme/**/*.test.ts'],
          setupFiles: ['test/support/setup.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'package',
          include: ['test/package/**/*.test.ts'],
          setupFiles: ['test/support/setup.ts'],
          environment: 'node',
          testTimeout: 60_000,
        },
      },
    ],
  },
});
