import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderConfigFile } from '../src/pipeline.js';
import { minimalConfig, render, REPO_ROOT } from './helpers.js';

const example = join(REPO_ROOT, 'pgb.config.yaml');

describe('rendering the example config', () => {
  const files = renderConfigFile(example);

  it('matches the committed golden output in generated/, byte for byte', () => {
    for (const f of files) expect(readFileSync(join(REPO_ROOT, 'generated', f.path), 'utf8'), f.path).toBe(f.content);
  });

  it('is deterministic: the same config gives the same bytes', () => {
    expect(renderConfigFile(example)).toEqual(files);
  });

  it('writes the SPEC layout for the server and the dev machine', () => {
    const paths = files.map((f) => f.path);
    for (const p of [
      'main-server/install.sh', 'main-server/README.md', 'main-server/MANIFEST',
      'main-server/root/usr/local/sbin/pg_backup_all.sh', 'main-server/root/usr/local/sbin/borg_pg_artifacts.sh',
      'main-server/root/usr/local/sbin/pgb-restore.sh', 'main-server/root/usr/local/sbin/pgb_receivewal.sh',
      'main-server/root/etc/systemd/system/pg-backup-all.service', 'main-server/root/etc/systemd/system/pg-backup-all.timer',
      'main-server/root/etc/systemd/system/pgb-receivewal@.service', 'main-server/root/etc/sudoers.d/pgb-pull-main-server',
      'main-server/snippets/fstab', 'main-server/snippets/pg_hba.conf', 'main-server/snippets/replication-role.sql',
      'main-server/snippets/authorized_keys', 'main-server/snippets/pg-borg.env.template',
      'omarchy/install.sh', 'omarchy/README.md', 'omarchy/MANIFEST', 'omarchy/root/usr/local/sbin/pull-server-backups.sh',
      'omarchy/root/usr/local/sbin/pgb-restore.sh', 'omarchy/root/etc/systemd/system/pull-server-backups.timer',
      'omarchy/snippets/borg-allowlist.txt',
    ]) expect(paths).toContain(p);
  });

  it('lists every installed file in the MANIFEST with mode, owner and the sha256 of its bytes', async () => {
    const { createHash } = await import('node:crypto');
    const manifest = files.find((f) => f.path === 'main-server/MANIFEST')!.content.trim().split('\n');
    const installed = files.filter((f) => f.path.startsWith('main-server/root/'));
    expect(manifest).toHaveLength(installed.length);
    for (const line of manifest) {
      const [mode, owner, group, dest, sha] = line.split(' ');
      const file = files.find((f) => f.path === `main-server/root${dest}`)!;
      expect(createHash('sha256').update(file.content).digest('hex')).toBe(sha);
      expect(owner).toBe('root');
      expect(group).toBe('root');
      expect(mode).toMatch(/^0[0-7]{3}$/);
    }
  });

  it('bakes the config into each script as readonly constants', () => {
    const script = files.find((f) => f.path.endsWith('sbin/pg_backup_all.sh'))!.content;
    expect(script).toContain("readonly SERVICE_NAMES=('service_a' 'service_b')");
    expect(script).toContain("readonly SERVICE_PORTS=('5433' '5434')");
    expect(script).toContain("readonly REPL_PASS_FILE='/etc/pg_backup/repl_password'");
    expect(script).not.toMatch(/^\s*(source|\.) /m);
  });

  it('never renders the runbook\'s rsync-as-root sudo rule', () => {
    const sudoers = files.find((f) => f.path.includes('sudoers.d'))!.content.split('\n').filter((l) => !l.startsWith('#')).join('\n');
    expect(sudoers).not.toMatch(/NOPASSWD:\s*\/usr\/bin\/rsync\b/);
    expect(sudoers).toContain('/usr/bin/rrsync -ro /mnt/backup');
  });
});

describe('rendering follows the config', () => {
  it('one file set per host, none for a host that is gone', () => {
    const cfg = minimalConfig();
    cfg.servers.push({ name: 'second', services: [{ name: 'db', port: 5500, pgVersion: 16 }] });
    const hosts = new Set(render(cfg).map((f) => f.path.split('/')[0]));
    expect([...hosts].sort()).toEqual(['.pgb-files', 'dev', 'second', 'srv']);
  });

  it('drops the external unit when there is no external drive', () => {
    const cfg = minimalConfig();
    cfg.servers[0].repos = { external: null };
    expect(render(cfg).map((f) => f.path)).not.toContain('srv/root/etc/systemd/system/pgb-borg-external.service');
  });

  it('uses the version-matched client of each service', () => {
    const cfg = minimalConfig();
    cfg.servers[0].services.push({ name: 'old', port: 5499, pgVersion: 13 });
    const script = render(cfg).find((f) => f.path.endsWith('pg_backup_all.sh'))!.content;
    expect(script).toContain("readonly SERVICE_VERSIONS=('15' '13')");
  });
});
