// Shared test helpers: configs as objects, rendered in memory or written to temp dirs.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { parseConfigText } from '../src/config/load.js';
import { renderConfig } from '../src/pipeline.js';

export const REPO_ROOT = join(import.meta.dirname, '..');
export const CLI = join(REPO_ROOT, 'dist', 'cli', 'main.js');

export function minimalConfig(): any {
  return {
    version: 1,
    servers: [{ name: 'srv', services: [{ name: 'app', port: 5433, pgVersion: 15 }] }],
    devs: [{ name: 'dev', pullFrom: ['srv'] }],
  };
}

export function parse(cfg: unknown, file = 'test.yaml') {
  return parseConfigText(stringify(cfg), file);
}

/** The error lines a config produces, or [] when it is valid. */
export function problems(cfg: unknown): string[] {
  try {
    parse(cfg);
    return [];
  } catch (e: any) {
    if (!e.problems) throw e;
    return e.message.split('\n');
  }
}

export function render(cfg: unknown) {
  return renderConfig(parse(cfg));
}

/** A fresh temp dir under the run's root (test/global-setup.ts removes it at the end). */
export function tempDir(prefix = 'pgb-test-'): string {
  return mkdtempSync(join(process.env.PGB_TEST_TMP ?? tmpdir(), prefix));
}

export function writeTemp(dir: string, name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}
