// Shared test helpers: configs as objects, rendered in memory or written to temp dirs.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

// Every temp dir of this test process lives under one root, removed when the process ends.
let tempRoot: string | undefined;
export function tempDir(prefix = 'pgb-test-'): string {
  if (!tempRoot) {
    const root = mkdtempSync(join(tmpdir(), 'pgb-vitest-'));
    process.on('exit', () => rmSync(root, { recursive: true, force: true }));
    tempRoot = root;
  }
  return mkdtempSync(join(tempRoot, prefix));
}

export function writeTemp(dir: string, name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}
