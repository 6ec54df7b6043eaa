// The CLI as a user runs it: exit codes 0/1/2, nothing written on bad input, stale files removed.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CLI, minimalConfig, tempDir } from './helpers.js';

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
    expect(again.stderr).toContain('exists');
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
