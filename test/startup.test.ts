// The installed command (package.json "bin", which runs the one-file bundle scripts/bundle.mjs
// makes) must behave exactly like `node dist/cli/main.js`, and fall back to it whenever the bundle
// is missing or older than the tsc output.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { stringify } from 'yaml';
import { CLI, REPO_ROOT, minimalConfig, tempDir } from './helpers.js';

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
const BIN = join(REPO_ROOT, pkg.bin['pgb-gen']);
const BUNDLE = join(REPO_ROOT, 'dist', 'cli', 'pgb-gen.cjs');
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

/** A copy of the package layout (bin/, dist/cli/ with the real tsc output) in a dir with a space;
 * bundle: what to put at dist/cli/pgb-gen.cjs (null: none), older: make it older than main.js. */
function fakeInstall(bundle: string | null, older = false) {
  const root = join(tempDir('pgb-install-'), 'my pkg');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'dist'));
  copyFileSync(BIN, join(root, 'bin', 'pgb-gen.cjs'));
  for (const d of readdirSync(join(REPO_ROOT, 'dist'))) {
    if (d !== 'cli') symlinkSync(join(REPO_ROOT, 'dist', d), join(root, 'dist', d));
  }
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'));
  mkdirSync(join(root, 'dist', 'cli'));
  copyFileSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'), join(root, 'dist', 'cli', 'main.js'));
  if (bundle !== null) {
    writeFileSync(join(root, 'dist', 'cli', 'pgb-gen.cjs'), bundle);
    if (older) utimesSync(join(root, 'dist', 'cli', 'pgb-gen.cjs'), new Date(0), new Date(0));
  }
  return join(root, 'bin', 'pgb-gen.cjs');
}

describe('start-up: the installed bin', () => {
  it('runs the bundle that npm run build / npm ci made', () => {
    expect(existsSync(BUNDLE)).toBe(true);
    expect(statSync(BUNDLE).mtimeMs).toBeGreaterThanOrEqual(statSync(CLI).mtimeMs);
  });

  it.each(cases)('gives the same output as node dist/cli/main.js for %s', (_name, args, cfg) => {
    const want = plain(args, cfg);
    expect(outcome([BIN], args, cfg)).toEqual(want);
    expect(outcome(['node', BUNDLE], args, cfg)).toEqual(want);
  });

  it('works through a symlink, as npm installs it in node_modules/.bin', () => {
    const link = join(tempDir('pgb-bin-'), 'pgb-gen');
    symlinkSync(BIN, link);
    expect(outcome([link], ['build'])).toEqual(plain(['build']));
  });

  it('runs dist/cli/main.js when the bundle is missing or older than it', () => {
    const want = plain(['build']);
    // A bundle that would fail loudly if it ran: the fallback must not run it.
    const broken = 'process.stderr.write("stale bundle ran\\n"); process.exit(9);\n';
    expect(outcome([fakeInstall(null)], ['build'])).toEqual(want);
    expect(outcome([fakeInstall(broken, true)], ['build'])).toEqual(want);
    // ... and a bundle newer than main.js is the one that runs.
    expect(outcome([fakeInstall(broken)], ['build']).status).toBe(9);
  });
});
