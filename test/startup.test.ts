// The installed command (package.json "bin", a shell script that starts the V8 start-up snapshot
// made by scripts/bundle.mjs) must behave exactly like `node dist/cli/main.js`, and fall back to
// it whenever the snapshot is missing, damaged or was built elsewhere.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { stringify } from 'yaml';
import { CLI, REPO_ROOT, minimalConfig, tempDir } from './helpers.js';

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
const BIN = join(REPO_ROOT, pkg.bin['pgb-gen']);
const BLOB = join(REPO_ROOT, 'dist', 'pgb-gen.blob');
const env = { ...process.env, NODE_OPTIONS: '' };

/** Runs `cmd args` in a fresh dir holding the test config; returns what it printed and wrote. */
function outcome(cmd: string[], args: string[], cfg: unknown = minimalConfig()) {
  const dir = tempDir('pgb-startup-');
  writeFileSync(join(dir, 'pgb.config.yaml'), stringify(cfg));
  const r = spawnSync(cmd[0], [...cmd.slice(1), ...args], { cwd: dir, encoding: 'utf8', env });
  const files: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else files[relative(dir, p)] = `${(statSync(p).mode & 0o777).toString(8)} ${readFileSync(p, 'utf8')}`;
    }
  };
  walk(dir);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, files };
}

const plain = (args: string[], cfg?: unknown) => outcome(['node', CLI], args, cfg);

const badConfig = () => {
  const cfg = minimalConfig();
  cfg.servers[0].services[0].port = 'five';
  return cfg;
};

const cases: [string, string[], unknown?][] = [
  ['build', ['build', '-o', 'out']],
  ['plan', ['plan']],
  ['--help', ['--help']],
  ['--version', ['--version']],
  ['a bad config', ['build'], badConfig()],
  ['an unknown option', ['build', '--nope']],
];

/** A copy of the package layout (bin/, dist/ linked to the real one) in a dir with a space. */
function fakeInstall(blob: Buffer | null, builtIn?: string) {
  const root = join(tempDir('pgb-install-'), 'my pkg');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'dist'));
  copyFileSync(BIN, join(root, 'bin', 'pgb-gen'));
  symlinkSync(join(REPO_ROOT, 'dist', 'cli'), join(root, 'dist', 'cli'));
  if (blob) {
    writeFileSync(join(root, 'dist', 'pgb-gen.blob'), blob);
    writeFileSync(join(root, 'dist', 'pgb-gen.blob.root'), `${builtIn ?? root}\n`);
  }
  return join(root, 'bin', 'pgb-gen');
}

describe('start-up: the installed bin', () => {
  it.each(cases)('gives the same output as node dist/cli/main.js for %s', (_name, args, cfg) => {
    const want = plain(args, cfg);
    expect(outcome([BIN], args, cfg)).toEqual(want);
    if (existsSync(BLOB)) expect(outcome(['node', '--snapshot-blob', BLOB, '--'], args, cfg)).toEqual(want);
  });

  it('works through a symlink, as npm installs it in node_modules/.bin', () => {
    const link = join(tempDir('pgb-bin-'), 'pgb-gen');
    symlinkSync(BIN, link);
    expect(outcome([link], ['build'])).toEqual(plain(['build']));
  });

  it('falls back to dist/cli/main.js when the snapshot is missing, damaged or from elsewhere', () => {
    const want = plain(['build']);
    const real = existsSync(BLOB) ? readFileSync(BLOB) : Buffer.alloc(1 << 20, 1);
    for (const bin of [
      fakeInstall(null),
      fakeInstall(Buffer.from('not a snapshot\n')),
      fakeInstall(real.subarray(0, real.length >> 1)),
      fakeInstall(real, '/somewhere/else'),
    ]) {
      const got = outcome([bin], ['build']);
      // A damaged blob makes Node print its own error before the fallback runs.
      expect({ ...got, stderr: '' }).toEqual({ ...want, stderr: '' });
    }
  });
});
