import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Real VMs and real processes: keep the 2-core machine from thrashing.
    maxWorkers: 2,
    // The JSON report is what .ci/run counts for its closing 'N passed, N failed, N skipped' line.
    reporters: ['default', ['json', { outputFile: '.vitest-results.json' }]],
  },
});
