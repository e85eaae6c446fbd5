// Two projects: fast unit tests on plain values (test/unit), and integration tests that
// drive the real bed: Docker Engine, Postgres, registry (test/integration). test/run-tests.sh
// runs the integration files side by side on several workers (most of their time is waiting on
// boots, leases and health gates); each test owns its containers, databases and directories
// (test/support/bed.ts), and the longest files start first (test/support/sequencer.cjs).
const common = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  resolver: 'ts-jest-resolver',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json', useESM: true }] }
}
export default {
  // Each file bounds its own `test.concurrent` tests (test/support/pool.ts, the fault matrix's
  // FM_CONCURRENCY): jest's bound of 5, shared by a file's queues, let tests waiting for one
  // resource (a dedicated dockerd) hold every place while another (a Postgres cluster) idled.
  maxConcurrency: 64,
  testSequencer: '<rootDir>/test/support/sequencer.cjs',
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      setupFilesAfterEnv: ['<rootDir>/test/support/timeout.ts'],
      slowTestThreshold: 60
    }
  ]
}
