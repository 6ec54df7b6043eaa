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
      'main-server/root/etc/pgb-gen/rsyncd-main-server.conf',
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
    expect(sudoers).toContain('Cmnd_Alias PGB_PULL_MAIN_SERVER = /usr/bin/rsync --server --daemon --config\\=/etc/pgb-gen/rsyncd-main-server.conf .\n');
    expect(sudoers).not.toContain('env_keep');
    const keys = files.find((f) => f.path === 'main-server/snippets/authorized_keys')!.content;
    expect(keys).toContain('command="sudo -n /usr/bin/rsync --server --daemon --config=/etc/pgb-gen/rsyncd-main-server.conf ."');
  });

  it('serves the pull key exactly the two trees, never the rest of the backup disk (the Borg repo beside them)', () => {
    const conf = files.find((f) => f.path === 'main-server/root/etc/pgb-gen/rsyncd-main-server.conf')!.content;
    const lines = conf.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(lines.filter((l) => l.startsWith('[') || l.startsWith('path ='))).toEqual([
      '[artifacts]', 'path = /mnt/backup/postgres', '[config]', 'path = /mnt/backup/config',
    ]);
    for (const l of ['use chroot = yes', 'read only = yes', 'write only = no', 'list = no', 'uid = root', 'gid = root',
      'pre-xfer exec = /usr/local/sbin/pgb_pull_links.sh'])
      expect(lines).toContain(l);
    // The hard-link check the daemon runs is installed root-owned where the config names it.
    expect(files.find((f) => f.path === 'main-server/MANIFEST')!.content).toMatch(/^0750 root root \/usr\/local\/sbin\/pgb_pull_links\.sh [0-9a-f]{64}$/m);
    expect(conf).not.toMatch(/^path = \/mnt\/backup(\/borg)?$/m);
    const manifest = files.find((f) => f.path === 'main-server/MANIFEST')!.content;
    expect(manifest).toMatch(/^0644 root root \/etc\/pgb-gen\/rsyncd-main-server\.conf [0-9a-f]{64}$/m);
    const pull = files.find((f) => f.path === 'omarchy/root/usr/local/sbin/pull-server-backups.sh')!.content;
    expect(pull).toContain('source="${user}@${host}::"');
    expect(pull).toContain("readonly ARTIFACTS_MODULE='artifacts'");
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

  it('gives the dev README Arch steps for packageManager pacman, Debian ones by default', () => {
    const readme = (cfg: any) => render(cfg).find((f) => f.path === 'dev/README.md')!.content;
    const shBlocks = (md: string) => [...md.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]).join('');
    const debian = shBlocks(readme(minimalConfig()));
    expect(debian).toContain('sudo apt install -y rsync openssh-client sudo postgresql-15\n');
    expect(debian).not.toContain('pacman');
    const cfg = minimalConfig();
    cfg.servers[0].services.push({ name: 'old', port: 5499, pgVersion: 13 });
    Object.assign(cfg.devs[0], { packageManager: 'pacman', pgBinRoot: '/opt/pgb/postgresql' });
    const arch = readme(cfg);
    expect(shBlocks(arch)).toContain([
      'sudo pacman -S --needed --noconfirm rsync openssh sudo postgresql',
      'sudo install -d -m 0755 /opt/pgb/postgresql/13',
      'sudo ln -sfn /usr/bin /opt/pgb/postgresql/13/bin',
      'sudo install -d -m 0755 /opt/pgb/postgresql/15',
      'sudo ln -sfn /usr/bin /opt/pgb/postgresql/15/bin',
    ].join('\n') + '\n');
    expect(shBlocks(arch)).not.toContain('apt');
    // The restored copy is started with the binaries the scripts use.
    expect(shBlocks(arch)).toContain('sudo -u postgres /opt/pgb/postgresql/15/bin/pg_ctl -D /var/tmp/restore');
    const pull = render(cfg).find((f) => f.path === 'dev/root/usr/local/sbin/pull-server-backups.sh')!.content;
    expect(pull).toContain("readonly PG_BIN_ROOT='/opt/pgb/postgresql'");
  });
});
