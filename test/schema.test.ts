import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfigText } from '../src/config/load.js';
import { minimalConfig, parse, problems, REPO_ROOT } from './helpers.js';

const specExample = readFileSync(join(REPO_ROOT, 'examples', 'spec-example.yaml'), 'utf8');

describe('the SPEC example', () => {
  it('validates as it stands, with defaults filled in', () => {
    const cfg = parseConfigText(specExample, 'spec-example.yaml');
    const s = cfg.servers[0];
    expect(s.services.map((v) => v.host)).toEqual(['127.0.0.1', '127.0.0.1']);
    expect(s.repos.external?.reserveBytes).toBe(629145600);
    expect(s.parallelJobs).toBe(3);
    expect(cfg.devs[0].pullFrom).toEqual(['main-server']);
  });

  it('is the repo root pgb.config.yaml', () => {
    expect(readFileSync(join(REPO_ROOT, 'pgb.config.yaml'), 'utf8')).toBe(specExample);
  });
});

describe('defaults are the runbook values', () => {
  it('fills every omitted field', () => {
    const s = parse(minimalConfig()).servers[0];
    expect(s.ssh).toEqual({ port: 2222, user: 'jared', allowFrom: [] });
    expect(s.schedule).toBe('02:00');
    expect(s.paths.backupMount).toBe('/mnt/backup');
    expect(s.paths.artifacts).toBe('/mnt/backup/postgres');
    expect(s.repos.primary).toBe('/mnt/backup/borg');
    expect(s.repos.external).toMatchObject({ mount: '/media/usb', path: '/media/usb/borg', warnFreeBytes: 2147483648, maxPruneIterations: 25 });
    expect(s.borg).toMatchObject({ encryption: 'repokey', compression: 'lz4', chunkerParams: 'fixed,8192', passphraseFile: '/etc/borg/pg-borg.env' });
    expect(s.replication).toEqual({ user: 'repl_backup', passwordFile: '/etc/pg_backup/repl_password', allowedSubnet: '172.19.0.0/16' });
    expect(s.retention).toEqual({ rawDays: 3, keepDaily: 7, keepWeekly: 4, keepMonthly: 6 });
    expect(s.rawReuse).toBe('link');
    expect(s.reusedChecksums).toBe('skip');
    expect(s.borg).toMatchObject({ filesCache: 'mtime,size,inode', stablePath: true });
  });

  it('accepts rawReuse copy, reusedChecksums check, the ctime files cache and no stable path', () => {
    const cfg = minimalConfig();
    cfg.servers[0].rawReuse = 'copy';
    cfg.servers[0].reusedChecksums = 'check';
    cfg.servers[0].borg = { filesCache: 'ctime,size,inode', stablePath: false };
    expect(problems(cfg)).toEqual([]);
    const s = parse(cfg).servers[0];
    expect([s.rawReuse, s.reusedChecksums, s.borg.filesCache, s.borg.stablePath]).toEqual(['copy', 'check', 'ctime,size,inode', false]);
  });

  it('keeps services host-tooled and unknown to docker unless told (image, dataVolume, tools)', () => {
    const v = parse(minimalConfig()).servers[0].services[0];
    expect(v.tools).toBe('host');
    expect(v.image).toBeUndefined();
    expect(v.dataVolume).toBeUndefined();
  });

  it('accepts an Arch dev machine with a pgBinRoot of its own', () => {
    const cfg = minimalConfig();
    Object.assign(cfg.devs[0], { packageManager: 'pacman', pgBinRoot: '/opt/pgb/postgresql' });
    expect(problems(cfg)).toEqual([]);
  });

  it('accepts docker image references, volume names and host directories', () => {
    const cfg = minimalConfig();
    Object.assign(cfg.servers[0].services[0], { image: `registry.example.org:5000/db/postgres:15.8@sha256:${'a'.repeat(64)}`, dataVolume: 'app_pgdata', tools: 'image' });
    cfg.servers[0].services.push({ name: 'b', port: 5434, pgVersion: 17, image: 'postgres', dataVolume: '/srv/b/pgdata' });
    expect(problems(cfg)).toEqual([]);
  });

  it('gives a dev machine its own retention, a pull cap and a free-space reserve', () => {
    const d = parse(minimalConfig()).devs[0];
    expect(d.retention).toEqual({ keepBackups: 3, keepDays: 7 });
    expect(d.maxPullBytes).toBe(214748364800);
    expect(d.reserveBytes).toBe(1073741824);
    expect(d.pgBinRoot).toBe('/usr/lib/postgresql');
    expect(d.walSchedule).toBe('*:0/5');
    expect(d.packageManager).toBe('apt');
    expect(d.pullBasis).toBe('previous');
    expect(d.pullCompress).toBe('zstd');
  });

  it('accepts every pull compression (pullCompress)', () => {
    for (const choice of ['zstd', 'lz4', 'zlib', 'none']) {
      const cfg = minimalConfig();
      cfg.devs[0].pullCompress = choice;
      expect(problems(cfg)).toEqual([]);
      expect(parse(cfg).devs[0].pullCompress).toBe(choice);
    }
  });

  it('accepts a pull without a basis (pullBasis none)', () => {
    const cfg = minimalConfig();
    cfg.devs[0].pullBasis = 'none';
    expect(problems(cfg)).toEqual([]);
    expect(parse(cfg).devs[0].pullBasis).toBe('none');
  });

  it('accepts a remote Borg repository and no external drive', () => {
    const cfg = minimalConfig();
    cfg.servers[0].repos = { primary: 'ssh://borg@backup.example.org:22/srv/borg/srv', external: null };
    expect(problems(cfg)).toEqual([]);
  });
});

// Each invalid config and its approved error text (file:line:col path: message).
export const cases: [string, (c: any) => void, string[]][] = [
  ['an unknown key', (c) => { c.servers[0].retention = { rawDay: 3 }; }, [
    "test.yaml:9:7 servers[0].retention.rawDay: expected a known key, found unknown key \"rawDay\"",
  ]],
  ['a bad name', (c) => { c.servers[0].name = 'Main Server'; }, [
    "test.yaml:3:11 servers[0].name: expected a name of lowercase letters, digits, \"_\" or \"-\", starting with a letter, found \"Main Server\"",
    "test.yaml:11:9 devs[0].pullFrom[0]: expected the name of a configured server (Main Server), found \"srv\"",
  ]],
  ['a port out of range', (c) => { c.servers[0].services[0].port = 70000; }, [
    "test.yaml:6:15 servers[0].services[0].port: expected a value <= 65535, found number 70000",
  ]],
  ['a relative path', (c) => { c.servers[0].paths = { artifacts: 'backup/postgres' }; }, [
    "test.yaml:9:18 servers[0].paths.artifacts: expected an absolute path of the characters A-Z a-z 0-9 . _ / -, found \"backup/postgres\"",
  ]],
  ['a path with ..', (c) => { c.servers[0].paths = { artifacts: '/mnt/backup/../etc' }; }, [
    "test.yaml:9:18 servers[0].paths.artifacts: expected a normalized path (no \"..\", \".\", \"//\" or trailing \"/\"), found \"/mnt/backup/../etc\"",
  ]],
  ['a path with a space', (c) => { c.servers[0].borg = { passphraseFile: '/etc/borg/my file' }; }, [
    "test.yaml:9:23 servers[0].borg.passphraseFile: expected an absolute path of the characters A-Z a-z 0-9 . _ / -, found \"/etc/borg/my file\"",
  ]],
  ['duplicate service names', (c) => { c.servers[0].services.push({ name: 'app', port: 5434, pgVersion: 15 }); }, [
    "test.yaml:8:15 servers[0].services[1].name: expected a unique service name, found \"app\" again (first at index 0)",
  ]],
  ['duplicate ports', (c) => { c.servers[0].services.push({ name: 'other', port: 5433, pgVersion: 15 }); }, [
    "test.yaml:9:15 servers[0].services[1].port: expected a unique port per server, found \"127.0.0.1:5433\" again (first at index 0)",
  ]],
  ['a bad host', (c) => { c.servers[0].host = 'bad host!'; }, [
    "test.yaml:8:11 servers[0].host: expected a hostname or an IP address, found \"bad host!\"",
  ]],
  ['a bad user', (c) => { c.servers[0].ssh = { user: 'Jared$' }; }, [
    "test.yaml:9:13 servers[0].ssh.user: expected a POSIX user name (lowercase, digits, \"_\" or \"-\", at most 32 characters), found \"Jared$\"",
  ]],
  ['pullFrom naming no server', (c) => { c.devs[0].pullFrom = ['nope']; }, [
    "test.yaml:11:9 devs[0].pullFrom[0]: expected the name of a configured server (srv), found \"nope\"",
  ]],
  ['artifacts outside the backup mount', (c) => { c.servers[0].paths = { artifacts: '/var/backups/pg' }; }, [
    "test.yaml:9:18 servers[0].paths.artifacts: expected a directory inside paths.backupMount (/mnt/backup), found /var/backups/pg",
  ]],
  ['a missing required field', (c) => { delete c.servers[0].services[0].pgVersion; }, [
    "test.yaml:5:9 servers[0].services[0].pgVersion: expected number, found nothing",
  ]],
  ['a retention that keeps nothing', (c) => { c.servers[0].retention = { keepDaily: 0, keepWeekly: 0, keepMonthly: 0 }; }, [
    'test.yaml:9:7 servers[0].retention: expected at least one of keepDaily, keepWeekly, keepMonthly above 0 (Borg refuses a prune that keeps nothing)',
  ]],
  ['a dev retention that keeps no backup', (c) => { c.devs[0].retention = { keepBackups: 0 }; }, [
    'test.yaml:13:20 devs[0].retention.keepBackups: expected a value >= 1, found number 0',
  ]],
  ['a pull basis that is neither previous nor none', (c) => { c.devs[0].pullBasis = 'fuzzy'; }, [
    'test.yaml:12:16 devs[0].pullBasis: expected one of "previous", "none", found "fuzzy"',
  ]],
  ['a pull compression rsync does not name', (c) => { c.devs[0].pullCompress = 'gzip'; }, [
    'test.yaml:12:19 devs[0].pullCompress: expected one of "zstd", "lz4", "zlib", "none", found "gzip"',
  ]],
  ['a negative pull cap', (c) => { c.devs[0].maxPullBytes = -1; }, [
    'test.yaml:12:19 devs[0].maxPullBytes: expected a value >= 0, found number -1',
  ]],
  ['Arch without a pgBinRoot of its own', (c) => { c.devs[0].packageManager = 'pacman'; }, [
    'test.yaml:9:5 devs[0].pgBinRoot: expected a directory of its own for packageManager: pacman (e.g. /opt/pgb/postgresql: Arch keeps its binaries in /usr/bin and /usr/lib/postgresql holds its libraries), found the Debian default /usr/lib/postgresql',
  ]],
  ['a package manager pgb-gen does not know', (c) => { c.devs[0].packageManager = 'yum'; }, [
    'test.yaml:12:21 devs[0].packageManager: expected one of "apt", "pacman", found "yum"',
  ]],
  ['a WAL schedule that is no OnCalendar expression', (c) => { c.devs[0].walSchedule = 'every 5 min; reboot'; }, [
    'test.yaml:12:18 devs[0].walSchedule: expected a systemd OnCalendar expression like "02:00" or "daily", found "every 5 min; reboot"',
  ]],
  ['a rawReuse that is neither link nor copy', (c) => { c.servers[0].rawReuse = 'reflink'; }, [
    'test.yaml:8:15 servers[0].rawReuse: expected one of "link", "copy", found "reflink"',
  ]],
  ['a reusedChecksums that is neither skip nor check', (c) => { c.servers[0].reusedChecksums = 'never'; }, [
    'test.yaml:8:22 servers[0].reusedChecksums: expected one of "skip", "check", found "never"',
  ]],
  ['a files cache mode Borg has but that would read every shared file again', (c) => { c.servers[0].borg = { filesCache: 'disabled' }; }, [
    'test.yaml:9:19 servers[0].borg.filesCache: expected one of "mtime,size,inode", "ctime,size,inode", found "disabled"',
  ]],
  ['a stablePath that is not a boolean', (c) => { c.servers[0].borg = { stablePath: 'yes' }; }, [
    'test.yaml:9:19 servers[0].borg.stablePath: expected boolean, found "yes"',
  ]],
  ['a secret value in the config', (c) => { c.servers[0].replication = { password: 'hunter2' }; }, [
    "test.yaml:9:7 servers[0].replication.password: expected a known key, found unknown key \"password\"",
  ]],
  ['a malformed image reference', (c) => { c.servers[0].services[0].image = 'Postgres:15'; }, [
    'test.yaml:8:16 servers[0].services[0].image: expected a docker image reference like postgres:17 or registry.example.org/pg/postgres:17.2, found "Postgres:15"',
  ]],
  ['an image reference with shell in it', (c) => { c.servers[0].services[0].image = 'postgres:15;rm -rf /'; }, [
    'test.yaml:8:16 servers[0].services[0].image: expected a docker image reference like postgres:17 or registry.example.org/pg/postgres:17.2, found "postgres:15;rm -rf /"',
  ]],
  ['an image of another major version', (c) => { c.servers[0].services[0].image = 'postgres:16-bookworm'; }, [
    'test.yaml:8:16 servers[0].services[0].image: expected an image of PostgreSQL 15 (pgVersion), found postgres:16-bookworm',
  ]],
  ['a malformed volume name', (c) => { c.servers[0].services[0].dataVolume = 'my volume'; }, [
    'test.yaml:8:21 servers[0].services[0].dataVolume: expected a docker volume name ([A-Za-z0-9][A-Za-z0-9_.-]+) or an absolute, normalized host directory, found "my volume"',
  ]],
  ['a malformed container name', (c) => { c.servers[0].services[0].container = '-app'; }, [
    'test.yaml:8:20 servers[0].services[0].container: expected a docker container name ([A-Za-z0-9][A-Za-z0-9_.-]+), found "-app"',
  ]],
  ['two services in one container', (c) => { c.servers[0].services.push({ name: 'b', port: 5434, pgVersion: 15, container: 'app_pg' }); }, [
    'test.yaml:11:20 servers[0].services[1].container: expected a unique container name per server, found "app_pg" again (first at index 0)',
  ]],
  ['tools: image without an image', (c) => { c.servers[0].services[0].tools = 'image'; }, [
    'test.yaml:8:16 servers[0].services[0].tools: expected an image to run the tools from (set image, e.g. postgres:15), found tools: image without one',
  ]],
  ['tools neither host nor image', (c) => { c.servers[0].services[0].tools = 'docker'; }, [
    'test.yaml:8:16 servers[0].services[0].tools: expected one of "host", "image", found "docker"',
  ]],
];

describe('invalid configs are refused with their approved message', () => {
  for (const [what, mutate, expected] of cases) {
    it(what, () => {
      const cfg = minimalConfig();
      mutate(cfg);
      expect(problems(cfg)).toEqual(expected);
    });
  }

  it('reports every problem at once, sorted by line', () => {
    const cfg = minimalConfig();
    cfg.servers[0].name = 'X';
    cfg.servers[0].services[0].port = 0;
    cfg.devs[0].schedule = 'now; rm -rf /';
    const lines = problems(cfg);
    expect(lines).toHaveLength(4);
    expect(lines.map((l) => l.split(' ')[1].replace(/:$/, ''))).toEqual(['servers[0].name', 'servers[0].services[0].port', 'devs[0].pullFrom[0]', 'devs[0].schedule']);
  });

  it('points YAML syntax errors at their line', () => {
    expect(() => parseConfigText('version: 1\nservers: [\n', 'bad.yaml')).toThrow(/^bad\.yaml:\d+:\d+ \(root\): expected valid YAML/);
  });
});
