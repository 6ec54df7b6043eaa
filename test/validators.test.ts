// Real validators on real output: visudo for the sudoers drop-in, findmnt for the fstab lines.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { renderConfigFile } from '../src/pipeline.js';
import { REPO_ROOT, tempDir, writeTemp } from './helpers.js';

const files = renderConfigFile(join(REPO_ROOT, 'pgb.config.yaml'));
const file = (suffix: string) => files.find((f) => f.path.endsWith(suffix))!;

describe('real validators', () => {
  it('visudo -cf accepts the sudoers drop-in', () => {
    const p = writeTemp(tempDir(), 'pgb-pull', file('sudoers.d/pgb-pull-main-server').content);
    const r = spawnSync('visudo', ['-cf', p], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('findmnt --verify parses the fstab lines without a parse error', () => {
    const p = writeTemp(tempDir(), 'fstab', file('snippets/fstab').content);
    const r = spawnSync('findmnt', ['--verify', '--tab-file', p], { encoding: 'utf8' });
    // The UUID and mount point do not exist on this machine (errors); the syntax must be right.
    expect(r.stdout + r.stderr).toContain('0 parse errors');
    expect(r.stdout + r.stderr).toContain('/mnt/backup');
  });

  it('bash -n accepts every generated script', () => {
    for (const f of files.filter((x) => x.path.endsWith('.sh'))) {
      const r = spawnSync('bash', ['-n'], { input: f.content, encoding: 'utf8' });
      expect(r.stderr, f.path).toBe('');
    }
  });
});
