// One temp root for the whole vitest run (test/helpers.ts tempDir), removed when the run ends.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup() {
  const root = mkdtempSync(join(tmpdir(), 'pgb-vitest-'));
  process.env.PGB_TEST_TMP = root;
  return () => rmSync(root, { recursive: true, force: true });
}
