// The one impure step: put rendered files on disk, remove the ones an earlier build wrote
// that this config no longer produces, and touch nothing else.
import { chmodSync, existsSync, mkdirSync, readFileSync, rmdirSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FILE_LIST, type OutFile } from './files.js';

export function previousFiles(outDir: string): string[] {
  const list = join(outDir, FILE_LIST);
  return existsSync(list) ? readFileSync(list, 'utf8').split('\n').filter(Boolean) : [];
}

function removeEmptyParents(outDir: string, file: string) {
  for (let dir = dirname(join(outDir, file)); dir.startsWith(outDir + '/') ; dir = dirname(dir)) {
    if (!existsSync(dir) || readdirSync(dir).length) return;
    rmdirSync(dir);
  }
}

export function writeFiles(outDir: string, files: OutFile[]): { written: number; removed: string[] } {
  const keep = new Set(files.map((f) => f.path));
  const removed: string[] = [];
  for (const old of previousFiles(outDir)) {
    if (keep.has(old) || old.includes('..')) continue;
    const p = join(outDir, old);
    if (existsSync(p)) { unlinkSync(p); removed.push(old); removeEmptyParents(outDir, old); }
  }
  let written = 0;
  for (const f of files) {
    const p = join(outDir, f.path);
    mkdirSync(dirname(p), { recursive: true });
    if (!existsSync(p) || readFileSync(p, 'utf8') !== f.content) { writeFileSync(p, f.content); written++; }
    chmodSync(p, f.executable ? 0o755 : 0o644);
  }
  return { written, removed };
}
