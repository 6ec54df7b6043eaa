// The CLI as a user runs it: exit codes 0/1/2, nothing written on bad input, stale files removed.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { stringify } from 'yaml';
import { CLI, REPO_ROOT, minimalConfig, tempDir } from './helpers.js';

function run(args: string[], cwd: string) {
  return spawnSync('node', [CLI, ...args], { cwd, encoding: 'utf8', env: { ...process.env, SHELLCHECKJS_BIN: process.env.SHELLCHECKJS_BIN ?? '/usr/bin/shellcheck' } });
}

describe('pgb-gen CLI', () => {
  it('init writes a config that validates and builds, and refuses to overwrite it', () => {
    const dir = tempDir();
    expect(run(['init'], dir).status).toBe(0);
    expect(run(['validate'], dir).status).toBe(0);
    expect(run(['build'], dir).status).toBe(0);
    expect(existsSync(join(dir, 'generated', 'main-server', 'install.sh'))).toBe(true);
    const again = run(['init'], dir);
    expect(again.status).toBe(2);
    expect(again.stderr).toContain('pgb.config.yaml exists (a clone of pgb-gen ships the example config): run init in your own directory');
  });

  it('validate warns about the example\'s placeholder UUIDs and a mount without fstab line; --strict refuses them; build accepts', () => {
    const dir = tempDir();
    expect(run(['init'], dir).status).toBe(0);
    const warned = run(['validate'], dir);
    expect(warned.status).toBe(0);
    expect(warned.stdout).toBe('pgb.config.yaml: valid (1 server(s), 1 dev machine(s)), 2 warning(s)\n');
    expect(warned.stderr).toMatch(/^pgb\.config\.yaml:\d+:\d+ servers\[0\]\.fstab\[0\]\.uuid: warning: the example's placeholder UUID for \/mnt\/backup: put the UUID that `lsblk -o NAME,UUID` prints for that disk on main-server\n/);
    const strict = run(['validate', '--strict'], dir);
    expect(strict.status).toBe(2);
    expect(strict.stderr).toContain('pgb.config.yaml: 2 warning(s); --strict refuses them');
    const cfg = minimalConfig();
    writeFileSync(join(dir, 'real.yaml'), stringify(cfg));
    const noFstab = run(['validate', '--strict', '-c', 'real.yaml'], dir);
    expect(noFstab.status).toBe(2);
    expect(noFstab.stderr).toContain('servers[0].fstab: warning: no fstab line for the backup disk at /mnt/backup');
    cfg.servers[0].fstab = [{ mount: '/mnt/backup', uuid: '0b6d1c2e-aaaa-4bbb-8ccc-123456789abc' }, { mount: '/media/usb', uuid: '0b6d1c2e-aaaa-4bbb-8ccc-123456789abd' }];
    writeFileSync(join(dir, 'real.yaml'), stringify(cfg));
    const clean = run(['validate', '--strict', '-c', 'real.yaml'], dir);
    expect(clean.stderr).toBe('');
    expect(clean.status).toBe(0);
    expect(run(['build'], dir).status).toBe(0);
  });

  it('exits 2 with located errors and writes nothing on a bad config', () => {
    const dir = tempDir();
    const cfg = minimalConfig();
    cfg.servers[0].services[0].port = 'five';
    writeFileSync(join(dir, 'bad.yaml'), stringify(cfg));
    const r = run(['build', '-c', 'bad.yaml'], dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('bad.yaml:6:15 servers[0].services[0].port: expected number, found "five"\n');
    expect(existsSync(join(dir, 'generated'))).toBe(false);
  });

  it('exits 2 on a missing config file and on unknown options', () => {
    const dir = tempDir();
    const missing = run(['validate', '-c', 'nope.yaml'], dir);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/^nope\.yaml:0:0 \(root\): expected a readable config file, found ENOENT/);
    expect(run(['build', '--frobnicate'], dir).status).toBe(2);
  });

  it('build removes the files it generated earlier and no longer produces, and nothing else', () => {
    const dir = tempDir();
    const cfg = minimalConfig();
    cfg.servers.push({ name: 'gone', services: [{ name: 'x', port: 6000, pgVersion: 15 }] });
    writeFileSync(join(dir, 'c.yaml'), stringify(cfg));
    expect(run(['build', '-c', 'c.yaml'], dir).status).toBe(0);
    writeFileSync(join(dir, 'generated', 'gone', 'operator-notes.txt'), 'mine');
    cfg.servers.pop();
    writeFileSync(join(dir, 'c.yaml'), stringify(cfg));
    const r = run(['build', '-c', 'c.yaml'], dir);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('removed generated/gone/install.sh');
    expect(readdirSync(join(dir, 'generated', 'gone'))).toEqual(['operator-notes.txt']);
  });

  it('check passes on a fresh build and exits 1 with a diff when generated/ drifted', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'c.yaml'), stringify(minimalConfig()));
    run(['build', '-c', 'c.yaml'], dir);
    expect(run(['check', '-c', 'c.yaml'], dir).status).toBe(0);
    const script = join(dir, 'generated', 'srv', 'root', 'usr', 'local', 'sbin', 'pg_backup_all.sh');
    writeFileSync(script, readFileSync(script, 'utf8').replace("readonly KEEP_RAW_DAYS='3'", "readonly KEEP_RAW_DAYS='30'"));
    const r = run(['check', '-c', 'c.yaml'], dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("-readonly KEEP_RAW_DAYS='30'");
    expect(r.stderr).toContain("+readonly KEEP_RAW_DAYS='3'");
  });

  it('build twice gives the same bytes', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'c.yaml'), stringify(minimalConfig()));
    run(['build', '-c', 'c.yaml', '-o', 'a'], dir);
    run(['build', '-c', 'c.yaml', '-o', 'b'], dir);
    expect(spawnSync('diff', ['-r', 'a', 'b'], { cwd: dir }).status).toBe(0);
  });

  it('plan prints every file per host with destination, owner and mode', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'c.yaml'), stringify(minimalConfig()));
    const r = run(['plan', '-c', 'c.yaml'], dir);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('srv:\n');
    expect(r.stdout).toContain('  0750 root:root /usr/local/sbin/pg_backup_all.sh\n');
    expect(r.stdout).toContain('  0440 root:root /etc/sudoers.d/pgb-pull-srv\n');
    expect(r.stdout).toContain('dev:\n');
  });

  it('schema prints a JSON Schema that knows the fields and forbids unknown keys', () => {
    const r = run(['schema'], tempDir());
    expect(r.status).toBe(0);
    const schema = JSON.parse(r.stdout);
    expect(schema.properties.servers.items.properties.services.items.required).toContain('port');
    expect(schema.additionalProperties).toBe(false);
  });

  it('--help shows examples on every command; --version prints the version', () => {
    const dir = tempDir();
    for (const cmd of ['init', 'validate', 'build', 'check', 'plan', 'schema']) {
      const r = run([cmd, '--help'], dir);
      expect(r.status, cmd).toBe(0);
      expect(r.stdout, cmd).toContain('Example');
    }
    expect(run(['--version'], dir).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

// The installed command (package.json "bin", run directly and through the symlink npm makes in
// node_modules/.bin) behaves exactly as `node dist/cli/main.js`: output, exit status, files.
describe('the installed bin', () => {
  const bin = join(REPO_ROOT, JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).bin['pgb-gen']);
  const env = { ...process.env, NODE_OPTIONS: '' };

  /** Runs `cmd args` in a fresh dir holding the config; returns what it printed and wrote. */
  function outcome(cmd: string[], args: string[], cfg: unknown) {
    const dir = tempDir('pgb-bin-');
    writeFileSync(join(dir, 'pgb.config.yaml'), stringify(cfg));
    const r = spawnSync(cmd[0], [...cmd.slice(1), ...args], { cwd: dir, encoding: 'utf8', env });
    const files: Record<string, string> = {};
    for (const f of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
      const p = join(dir, f);
      if (statSync(p).isFile()) files[relative(dir, p)] = `${(statSync(p).mode & 0o777).toString(8)} ${readFileSync(p, 'utf8')}`;
    }
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, files };
  }

  const badConfig = minimalConfig();
  badConfig.servers[0].services[0].port = 'five';
  const cases: [string, string[], unknown][] = [
    ['build', ['build', '-o', 'out'], minimalConfig()],
    ['plan', ['plan'], minimalConfig()],
    ['--help', ['--help'], minimalConfig()],
    ['--version', ['--version'], minimalConfig()],
    ['a bad config', ['build'], badConfig],
    ['an unknown option', ['build', '--nope'], minimalConfig()],
  ];

  it.each(cases)('gives the same output as node dist/cli/main.js for %s', (_name, args, cfg) => {
    expect(outcome([bin], args, cfg)).toEqual(outcome(['node', CLI], args, cfg));
  });

  it('works through a symlink, as npm installs it in node_modules/.bin', () => {
    const link = join(tempDir('pgb-bin-link-'), 'pgb-gen');
    symlinkSync(bin, link);
    expect(outcome([link], ['build'], minimalConfig())).toEqual(outcome(['node', CLI], ['build'], minimalConfig()));
  });
});
