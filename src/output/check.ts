// `check`: does generated/ match the config, and is every script shellcheck-clean?
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { OutFile } from './files.js';
import { previousFiles } from './write.js';

export interface Drift { path: string; kind: 'missing' | 'changed' | 'stale'; diff?: string }

function diffOf(path: string, expected: string): string {
  const r = spawnSync('diff', ['-u', '--label', `${path} (on disk)`, '--label', `${path} (from config)`, path, '-'], { input: expected, encoding: 'utf8' });
  return r.stdout;
}

export function findDrift(outDir: string, files: OutFile[]): Drift[] {
  const drift: Drift[] = [];
  const keep = new Set(files.map((f) => f.path));
  for (const f of files) {
    const p = join(outDir, f.path);
    if (!existsSync(p)) drift.push({ path: f.path, kind: 'missing' });
    else if (readFileSync(p, 'utf8') !== f.content) drift.push({ path: f.path, kind: 'changed', diff: diffOf(p, f.content) });
  }
  for (const old of previousFiles(outDir)) if (!keep.has(old) && existsSync(join(outDir, old))) drift.push({ path: old, kind: 'stale' });
  return drift;
}

export const isShellScript = (f: OutFile) => f.path.endsWith('.sh');

/** Runs shellcheck on every generated script; returns its gcc-format findings. */
export function shellcheck(files: OutFile[]): { findings: string; ok: boolean } {
  // The npm wrapper downloads a binary unless SHELLCHECKJS_BIN names one: prefer the system's.
  const bin = process.env.SHELLCHECKJS_BIN || (existsSync('/usr/bin/shellcheck') ? '/usr/bin/shellcheck' : 'shellcheck');
  let findings = '';
  for (const f of files.filter(isShellScript)) {
    const r = spawnSync(bin, ['-f', 'gcc', '-s', 'bash', '-'], { input: f.content, encoding: 'utf8' });
    if (r.error) return { findings: `shellcheck could not run (${bin}): ${r.error.message}\n`, ok: false };
    if (r.status !== 0) findings += r.stdout.replace(/^-:/gm, `${f.path}:`);
  }
  return { findings, ok: findings === '' };
}
