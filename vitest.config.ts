import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    // The npm shellcheck wrapper downloads a binary unless pointed at Debian's.
    env: { SHELLCHECKJS_BIN: process.env.SHELLCHECKJS_BIN ?? '/usr/bin/shellcheck' },
  },
});
