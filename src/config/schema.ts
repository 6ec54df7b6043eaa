// The config schema: every field the runbook hard-codes, with the runbook's value as default.
// Strict objects everywhere: an unknown key is an error, never a silent default.
import { z } from 'zod';
import { isIP } from 'node:net';

const NAME_RE = /^[a-z][a-z0-9_-]*$/;
const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
const PATH_RE = /^\/[A-Za-z0-9._/-]*$/;
const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const UUID_RE = /^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4})$/;
const ONCALENDAR_RE = /^[A-Za-z0-9 :*.,/~-]+$/;
const MOUNT_OPTION_RE = /^[A-Za-z0-9._=-]+$/;
const COMPRESSION_RE = /^(none|lz4|zstd(,([1-9]|1[0-9]|2[0-2]))?|zlib(,[0-9])?|lzma(,[0-9])?|auto,(lz4|zstd(,[0-9]+)?|zlib(,[0-9])?|lzma(,[0-9])?))$/;
const CHUNKER_RE = /^(default|buzhash,\d+,\d+,\d+,\d+|fixed,\d+(,\d+)?)$/;
const SSH_URL_RE = /^ssh:\/\/[a-z_][a-z0-9_-]*@[A-Za-z0-9.-]+(:\d{1,5})?\/[A-Za-z0-9._/~-]*$/;
const EMAIL_RE = /^[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const PUBKEY_RE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521) [A-Za-z0-9+/=]+( [A-Za-z0-9@._-]+)?$/;

export const name = z.string().regex(NAME_RE, 'a name of lowercase letters, digits, "_" or "-", starting with a letter');
export const posixUser = z.string().regex(USER_RE, 'a POSIX user name (lowercase, digits, "_" or "-", at most 32 characters)');
export const port = z.number().int().min(1).max(65535);

/** Absolute, normalized path of safe characters only: it reaches shell, units, sudoers and fstab. */
export const absPath = z
  .string()
  .regex(PATH_RE, 'an absolute path of the characters A-Z a-z 0-9 . _ / -')
  .refine((p) => p === '/' || (!p.endsWith('/') && !p.split('/').some((s, i) => i > 0 && (s === '' || s === '.' || s === '..'))), {
    message: 'a normalized path (no "..", ".", "//" or trailing "/")',
  });

export const host = z
  .string()
  .refine((h) => isIP(h) !== 0 || HOSTNAME_RE.test(h), { message: 'a hostname or an IP address' });

/** A Borg repository: a local absolute path or ssh://user@host:port/path. */
export const repoLocation = z.string().refine((r) => absPath.safeParse(r).success || (SSH_URL_RE.test(r) && !r.split('/').includes('..')), {
  message: 'an absolute path or ssh://user@host:port/path',
});

const cidr = z.string().refine((c) => {
  const [ip, bits, ...rest] = c.split('/');
  if (rest.length || bits === undefined || !/^\d{1,3}$/.test(bits)) return false;
  const v = isIP(ip);
  return v !== 0 && Number(bits) <= (v === 4 ? 32 : 128);
}, { message: 'a CIDR subnet like 172.19.0.0/16' });

const onCalendar = z.string().regex(ONCALENDAR_RE, 'a systemd OnCalendar expression like "02:00" or "daily"');

const fstabEntry = z.strictObject({
  mount: absPath.describe('Mount point'),
  uuid: z.string().regex(UUID_RE, 'a filesystem UUID as printed by blkid').describe('Filesystem UUID (blkid)'),
  fsType: z.string().regex(/^[a-z0-9]+$/, 'a filesystem type like ext4').default('ext4').describe('Filesystem type'),
  options: z.array(z.string().regex(MOUNT_OPTION_RE, 'a mount option like nofail')).min(1)
    .default(['nosuid', 'nodev', 'nofail', 'x-systemd.automount']).describe('Mount options'),
  dump: z.number().int().min(0).max(1).default(0),
  pass: z.number().int().min(0).max(2).default(2),
});

// Docker's own grammars (docker/distribution reference, daemon names): a value that passes them
// is one docker accepts, and none of them holds a character the shell or a unit could misread.
const IMAGE_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const IMAGE_DOMAIN = '(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]{1,5})?/)?';
const IMAGE_RE = new RegExp(`^${IMAGE_DOMAIN}${IMAGE_COMPONENT}(?:/${IMAGE_COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$`);
const DOCKER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]+$/;

/** The major version an image's tag names, when its name is postgres and its tag starts with one. */
export const imageMajor = (image: string): number | undefined => {
  const m = /(?:^|\/)postgres:(\d+)(?:[._-][^/]*)?(?:@|$)/.exec(image);
  return m ? Number(m[1]) : undefined;
};

const service = z.strictObject({
  name: name.describe('Service name: used in directory, unit and archive names'),
  host: host.default('127.0.0.1').describe('Where the host reaches the container\'s published port'),
  port: port.describe('Published PostgreSQL port on the host'),
  pgVersion: z.number().int().min(10).max(99).describe('PostgreSQL major version: selects the matching client binaries'),
  container: z.string().regex(DOCKER_NAME_RE, 'a docker container name ([A-Za-z0-9][A-Za-z0-9_.-]+)').optional()
    .describe('Docker container name (default <name>_pg)'),
  image: z.string().regex(IMAGE_RE, 'a docker image reference like postgres:17 or registry.example.org/pg/postgres:17.2').optional()
    .describe('The container\'s image (e.g. postgres:17). When set, the scripts check the container runs pgVersion before they use it, and tools: image can run from it'),
  dataVolume: z.string().refine((v) => DOCKER_NAME_RE.test(v) || absPath.safeParse(v).success, {
    message: 'a docker volume name ([A-Za-z0-9][A-Za-z0-9_.-]+) or an absolute, normalized host directory',
  }).optional()
    .describe('The named volume or host directory mounted at the container\'s PGDATA (/var/lib/postgresql/data); default: found with docker inspect'),
  tools: z.enum(['host', 'image']).default('host')
    .describe('Where pg_basebackup, pg_receivewal, pg_verifybackup and pg_waldump come from: host (paths.pgBinRoot/<pgVersion>/bin) or image (docker run --rm --network host of the service\'s image: no client package on the host)'),
  wal: z.boolean().default(true).describe('Stream WAL continuously with pg_receivewal for point-in-time recovery'),
});

const restoreJobs = z.number().int().min(1).max(64).default(2)
  .describe('Parallel `borg extract` processes when pgb-restore.sh restores from a Borg archive (at most 16 when it restores the newest backup from the stable stage; npm run bench)');

const external = z.strictObject({
  mount: absPath.default('/media/usb').describe('Mount point of the external drive'),
  path: absPath.default('/media/usb/borg').describe('Borg repository on the external drive'),
  warnFreeBytes: z.number().int().min(0).default(2147483648).describe('Warn when free space falls below this'),
  maxPruneIterations: z.number().int().min(1).max(1000).default(25).describe('How many oldest archives may be deleted to make room'),
  reserveBytes: z.number().int().min(0).default(629145600)
    .describe('Borg additional_free_space kept on the drive so prune and compact can still run when full'),
});

// ---- monitoring (SPEC 9): every field optional; thresholds left out are derived from the schedules ----
const hours = z.number().positive().max(87600);
const ratio = z.number().min(0).max(1);

/** The channels of pgb-notify.sh and pgb-check.sh. URLs carry tokens: only the paths of root-only files here. */
const notify = z.strictObject({
  webhookUrlFile: absPath.optional()
    .describe('Root-only file holding an ntfy-compatible webhook URL (https://ntfy.sh/<topic>): failures, state changes and recoveries are POSTed there'),
  healthchecksUrlFile: absPath.optional()
    .describe('Root-only file holding a Healthchecks ping URL with its ping key (https://hc-ping.com/<ping-key>): each job pings <url>/<job>, success or fail with the exit status and log tail'),
  deadManUrlFile: absPath.optional()
    .describe('Root-only file holding a dead man\'s switch URL pinged by every pgb-check run (a Healthchecks check URL works): silence means the host or its timers stopped'),
  email: z.string().regex(EMAIL_RE, 'an e-mail address like ops@example.org').optional()
    .describe('Recipient of failure and state-change mails, handed over SMTP to the host\'s MTA on 127.0.0.1:25 (exim4, postfix)'),
});

const serverThresholds = z.strictObject({
  basebackupWarnHours: hours.optional().describe('Newest base backup older than this: WARNING (default: the schedule\'s period + 2 h)'),
  basebackupCritHours: hours.optional().describe('Newest base backup older than this: CRITICAL (default: twice the period + 2 h)'),
  basebackupMinSizeRatio: ratio.default(0.5).describe('Newest base backup smaller than this share of the previous one: WARNING (a sudden drop is suspicious)'),
  walRetainedWarnBytes: z.number().int().min(0).default(1073741824).describe('WAL a replication slot holds back on the database: WARNING above this'),
  walRetainedCritBytes: z.number().int().min(0).default(4294967296).describe('... CRITICAL above this (the database\'s disk fills while a receiver is down)'),
  borgWarnHours: hours.optional().describe('Newest primary Borg archive older than this: WARNING (default: the schedule\'s period + 2 h)'),
  borgCritHours: hours.optional().describe('... CRITICAL (default: twice the period + 2 h)'),
  externalWarnHours: hours.default(192).describe('Newest archive on the external drive older than this: WARNING (an absent drive is stale, never OK)'),
  externalCritHours: hours.default(360).describe('... CRITICAL'),
  diskWarnFreeRatio: ratio.default(0.15).describe('Free share of a repository\'s disk below this: WARNING'),
  diskCritFreeRatio: ratio.default(0.05).describe('... CRITICAL'),
  checkWarnHours: hours.optional().describe('Last successful `borg check` older than this: WARNING (default: borg.checkSchedule\'s period + 24 h)'),
  checkCritHours: hours.optional().describe('... CRITICAL (default: twice the period + 24 h)'),
  drillWarnHours: hours.default(192).describe('Last successful restore drill older than this: WARNING'),
  drillCritHours: hours.default(360).describe('... CRITICAL'),
});

const devThresholds = z.strictObject({
  pullWarnHours: hours.optional().describe('Last successful pull of a server older than this: WARNING (default: the schedule\'s period + 2 h)'),
  pullCritHours: hours.optional().describe('... CRITICAL (default: twice the period + 2 h)'),
  pulledBasebackupWarnHours: hours.optional()
    .describe('Newest pulled base backup of a service older than this: WARNING, the server stopped backing up (default: server period + pull period + 2 h)'),
  pulledBasebackupCritHours: hours.optional().describe('... CRITICAL (default: twice the server period + pull period + 2 h)'),
  diskWarnFreeRatio: ratio.default(0.15).describe('Free share of localBase\'s disk below this: WARNING'),
  diskCritFreeRatio: ratio.default(0.05).describe('... CRITICAL'),
  drillWarnHours: hours.default(192).describe('Last successful restore drill of a pulled service (the weekly drill of the pulled copy) older than this: WARNING'),
  drillCritHours: hours.default(360).describe('... CRITICAL'),
});

const monitoringFields = {
  textfileDir: absPath.default('/var/lib/prometheus/node-exporter')
    .describe('Where every job writes its node_exporter textfile metrics (pgb_*.prom; the collector\'s --collector.textfile.directory)'),
  checkSchedule: onCalendar.default('*:0/15').describe('OnCalendar of pgb-check.timer: checks, state-change notifications and the dead man\'s switch ping'),
  notify: notify.prefault({}),
};
const serverMonitoring = z.strictObject({ ...monitoringFields, thresholds: serverThresholds.prefault({}) })
  .describe('Metrics, pgb-status.sh checks and notifications of this server (SPEC 9)');
const devMonitoring = z.strictObject({ ...monitoringFields, thresholds: devThresholds.prefault({}) })
  .describe('Metrics, pgb-status.sh checks and notifications of this dev machine (SPEC 9)');

const server = z.strictObject({
  name: name.describe('Server name: used in file, unit and archive names'),
  host: host.default('127.0.0.1').describe('How dev machines reach this server over SSH'),
  ssh: z.strictObject({
    port: port.default(2222),
    user: posixUser.default('jared').describe('Unprivileged user the dev machines pull as'),
    allowFrom: z.array(z.union([host, cidr])).default([]).describe('Addresses allowed to use the pull key (authorized_keys from=); empty: devs\' own addresses'),
  }).prefault({}),
  schedule: onCalendar.default('02:00').describe('OnCalendar of pg-backup-all.timer'),
  paths: z.strictObject({
    backupMount: absPath.default('/mnt/backup').describe('The backup disk mount point (must be really mounted)'),
    artifacts: absPath.default('/mnt/backup/postgres').describe('Raw base backups and WAL'),
    configArtifacts: absPath.default('/mnt/backup/config').describe('Copies of configPaths'),
    lockFile: absPath.optional().describe('flock file (default /run/lock/pgb-<server>.lock)'),
    pgBinRoot: absPath.default('/usr/lib/postgresql').describe('Where <version>/bin/pg_basebackup lives'),
    scriptsDir: absPath.default('/usr/local/sbin').describe('Where the scripts are installed'),
  }).prefault({}),
  repos: z.strictObject({
    primary: repoLocation.default('/mnt/backup/borg'),
    external: external.nullable().prefault({}).describe('External drive repository; null for none'),
  }).prefault({}),
  borg: z.strictObject({
    encryption: z.enum(['repokey', 'repokey-blake2', 'keyfile', 'keyfile-blake2', 'authenticated', 'authenticated-blake2']).default('repokey')
      .describe('Used by pgb_repo_init.sh only. repokey (AES-CTR + HMAC-SHA256) beat repokey-blake2 in every phase on a CPU with SHA extensions (npm run bench); on one without, repokey-blake2 is faster'),
    compression: z.string().regex(COMPRESSION_RE, 'a Borg compression spec like "zstd,3" or "lz4"').default('lz4')
      .describe('lz4 (Borg\'s own default, the runbook\'s): with fixed,8192 it keeps day-1 time at the runbook\'s (npm run bench)'),
    chunkerParams: z.string().regex(CHUNKER_RE, 'Borg chunker params like "fixed,8192" or "default"').default('fixed,8192')
      .describe('fixed,8192 matches PostgreSQL pages: day-2 growth 0.26x pgBackRest incremental vs 0.99x for default (npm run bench)'),
    filesCache: z.enum(['mtime,size,inode', 'ctime,size,inode']).default('mtime,size,inode')
      .describe('borg create --files-cache: what tells Borg a file is unchanged. A hard link (rawReuse link, stablePath) changes a file\'s ctime, never its mtime, and no backup file is modified after it is written, so mtime is safe here and skips the files the nights share (npm run bench)'),
    stablePath: z.boolean().default(true)
      .describe('pg_backup_all.sh hard-links the newest base backup of each service into <backupMount>/.pgb-borg-stage/<service>, archived first: Borg\'s files cache is keyed by path and a new backup has a new name each night; with rawReuse link its unchanged files are then not read again; <service>.name beside it names the backup, so pgb-restore.sh extracts the newest backup from an archive without listing it first (npm run bench)'),
    passphraseFile: absPath.default('/etc/borg/pg-borg.env').describe('Root-only file with BORG_PASSPHRASE=...'),
    lockWait: z.number().int().min(0).max(86400).default(600),
    checkSchedule: onCalendar.default('Sun 04:30')
      .describe('OnCalendar of pgb-borg-check.timer: `borg check` re-reads the whole repository, so it runs weekly, not in the nightly window (npm run bench)'),
    keyExportDir: absPath.default('/root').describe('Where pgb_repo_init.sh exports each repository key (root-only); copy them off the machine'),
  }).prefault({}),
  replication: z.strictObject({
    user: posixUser.default('repl_backup'),
    passwordFile: absPath.default('/etc/pg_backup/repl_password'),
    allowedSubnet: cidr.default('172.19.0.0/16')
      .describe('The containers\' docker network (`docker network inspect -f \'{{range .IPAM.Config}}{{.Subnet}}{{end}}\' NET`): connections to a published port arrive from its gateway; pg_hba lets the role replicate from it only'),
  }).prefault({}),
  retention: z.strictObject({
    rawDays: z.number().int().min(0).max(3650).default(3),
    keepDaily: z.number().int().min(0).default(7),
    keepWeekly: z.number().int().min(0).default(4),
    keepMonthly: z.number().int().min(0).default(6),
  }).prefault({}),
  parallelJobs: z.number().int().min(1).max(64).default(3).describe('Base backups run at once (they wait on the network and disk: 3 beat 1 and 2 on 2 cores, npm run bench)'),
  rawReuse: z.enum(['link', 'copy']).default('link')
    .describe('link: a new raw base backup hard-links the files it shares with the previous one (same path, size and SHA-256 in both backup manifests: nothing is read again; the manifests then carry SHA-256 instead of CRC32C), so the rawDays nights kept cost little more than one (npm run bench); copy: every backup holds its own copies'),
  reusedChecksums: z.enum(['skip', 'check']).default('skip')
    .describe('With rawReuse link, pg_verifybackup of a new base backup: skip checks the manifest, every file and its size and the WAL first (-s), then after the links only the checksums of the files not linked (a linked file is the previous backup\'s, checksummed against the same SHA-256 the night it arrived and never modified since: npm run bench); check: one full pass over every file before the links'),
  restoreJobs: restoreJobs,
  fstab: z.array(fstabEntry).default([])
    .describe('One line per disk: the backup disk and the external drive (validate warns when one is missing, --strict refuses)'),
  services: z.array(service).min(1),
  configPaths: z.array(absPath).default([]).describe('Host settings copied into configArtifacts nightly'),
  monitoring: serverMonitoring.prefault({}),
});

const dev = z.strictObject({
  name: name.describe('Dev machine name'),
  schedule: onCalendar.default('03:00'),
  walSchedule: onCalendar.default('*:0/5')
    .describe('OnCalendar of the WAL pull (pull-server-wal.timer): new WAL segments and the current partial one, between the nightly pulls (default every 5 minutes)'),
  pullFrom: z.array(name).min(1).describe('Server names this machine pulls from'),
  localBase: absPath.default('/mnt/upload').describe('Pulled copies land in <localBase>/<server>/'),
  sshKey: absPath.default('/etc/backup/ssh/backup_servers_ed25519'),
  knownHosts: absPath.default('/etc/backup/ssh/known_hosts'),
  address: z.union([host, cidr]).optional().describe('Address the servers see this machine connect from (authorized_keys from=)'),
  publicKey: z.string().regex(PUBKEY_RE, 'an OpenSSH public key line').optional().describe('The pull key\'s public half, when known'),
  lockFile: absPath.default('/run/lock/pgb-pull.lock'),
  scriptsDir: absPath.default('/usr/local/sbin'),
  pgBinRoot: absPath.default('/usr/lib/postgresql').describe('Where <version>/bin/pg_verifybackup lives: every pulled base backup is verified before it counts'),
  packageManager: z.enum(['apt', 'pacman']).default('apt')
    .describe('How the dev README installs rsync, ssh and PostgreSQL: apt (Debian/Ubuntu, binaries in /usr/lib/postgresql/<version>/bin) or pacman (Arch, binaries in /usr/bin: pgBinRoot then holds a <version>/bin link to it)'),
  restoreJobs: restoreJobs,
  pullBasis: z.enum(['previous', 'none']).default('previous')
    .describe('previous: each new base backup starts in the pull\'s mirror as hard links of the same service\'s previous one, so rsync sends only the files that changed, each as a delta (npm run bench); none: a new backup crosses the wire whole'),
  pullCompress: z.enum(['zstd', 'lz4', 'zlib', 'none']).default('zstd')
    .describe('How rsync compresses what the pulls receive (--compress-choice; the nightly and the --wal-only pull): zstd (the default, npm run bench: the fewest bytes on the wire), lz4 (less CPU), zlib (for a server whose rsync is older than 3.2), none'),
  maxPullBytes: z.number().int().min(0).default(214748364800)
    .describe('Refuse to pull more than this from one server in one run (bytes to receive, counted by a dry run first; default 200 GiB)'),
  reserveBytes: z.number().int().min(0).default(1073741824)
    .describe('Free space a pull leaves on localBase: a pull that would eat into it is refused before it writes (default 1 GiB)'),
  retention: z.strictObject({
    keepBackups: z.number().int().min(1).max(1000).default(3)
      .describe('Verified base backups of each service kept on this machine at least, whatever the server deleted'),
    keepDays: z.number().int().min(0).max(3650).default(7)
      .describe('A pulled base backup is kept this many days after it was pulled (and the WAL from the oldest kept one on)'),
  }).prefault({}).describe('The dev machine\'s own retention of pulled backups and WAL'),
  monitoring: devMonitoring.prefault({}),
});

export const configSchema = z
  .strictObject({
    version: z.literal(1),
    servers: z.array(server).min(1),
    devs: z.array(dev).default([]),
  })
  .superRefine((cfg, ctx) => {
    const dup = (values: string[], path: (i: number) => (string | number)[], what: string) => {
      const seen = new Map<string, number>();
      values.forEach((v, i) => {
        if (seen.has(v)) ctx.addIssue({ code: 'custom', params: { described: true }, path: path(i), message: `a unique ${what}, found "${v}" again (first at index ${seen.get(v)})` });
        else seen.set(v, i);
      });
    };
    cfg.servers.forEach((s, si) => {
      const r = s.retention;
      if (r.keepDaily + r.keepWeekly + r.keepMonthly === 0)
        ctx.addIssue({ code: 'custom', params: { described: true }, path: ['servers', si, 'retention'], message: 'at least one of keepDaily, keepWeekly, keepMonthly above 0 (Borg refuses a prune that keeps nothing)' });
    });
    // A WARNING threshold set above its CRITICAL one would make the warning unreachable.
    const ordered = (t: Record<string, number | undefined>, path: (string | number)[], pairs: [string, string][]) => {
      for (const [warn, crit] of pairs) {
        const w = t[warn];
        const c = t[crit];
        if (w !== undefined && c !== undefined && w >= c)
          ctx.addIssue({ code: 'custom', params: { described: true }, path: [...path, warn], message: `a value below ${crit} (${c}), found ${w}` });
      }
    };
    cfg.servers.forEach((s, si) => ordered(s.monitoring.thresholds, ['servers', si, 'monitoring', 'thresholds'], [
      ['basebackupWarnHours', 'basebackupCritHours'], ['walRetainedWarnBytes', 'walRetainedCritBytes'], ['borgWarnHours', 'borgCritHours'],
      ['externalWarnHours', 'externalCritHours'], ['checkWarnHours', 'checkCritHours'], ['drillWarnHours', 'drillCritHours'],
    ]));
    cfg.servers.forEach((s, si) => {
      const t = s.monitoring.thresholds;
      if (t.diskCritFreeRatio >= t.diskWarnFreeRatio)
        ctx.addIssue({ code: 'custom', params: { described: true }, path: ['servers', si, 'monitoring', 'thresholds', 'diskWarnFreeRatio'], message: `a value above diskCritFreeRatio (${t.diskCritFreeRatio}), found ${t.diskWarnFreeRatio}` });
    });
    cfg.devs.forEach((d, di) => ordered(d.monitoring.thresholds, ['devs', di, 'monitoring', 'thresholds'], [
      ['pullWarnHours', 'pullCritHours'], ['pulledBasebackupWarnHours', 'pulledBasebackupCritHours'], ['drillWarnHours', 'drillCritHours'],
    ]));
    const hostNames = [...cfg.servers.map((s) => s.name), ...cfg.devs.map((d) => d.name)];
    dup(hostNames, (i) => (i < cfg.servers.length ? ['servers', i, 'name'] : ['devs', i - cfg.servers.length, 'name']), 'host name');
    cfg.servers.forEach((s, si) => {
      s.services.forEach((v, vi) => {
        const at = (key: string) => ['servers', si, 'services', vi, key];
        if (v.tools === 'image' && !v.image)
          ctx.addIssue({ code: 'custom', params: { described: true }, path: at('tools'), message: 'an image to run the tools from (set image, e.g. postgres:' + v.pgVersion + '), found tools: image without one' });
        const major = v.image ? imageMajor(v.image) : undefined;
        if (major !== undefined && major !== v.pgVersion)
          ctx.addIssue({ code: 'custom', params: { described: true }, path: at('image'), message: `an image of PostgreSQL ${v.pgVersion} (pgVersion), found ${v.image}` });
      });
      // Two defaults (<name>_pg) can only clash when the names do, which is reported already.
      const firstContainer = new Map<string, { i: number; explicit: boolean }>();
      s.services.forEach((v, i) => {
        const c = v.container ?? `${v.name}_pg`;
        const first = firstContainer.get(c);
        if (!first) firstContainer.set(c, { i, explicit: v.container !== undefined });
        else if (first.explicit || v.container !== undefined)
          ctx.addIssue({ code: 'custom', params: { described: true }, path: ['servers', si, 'services', i, 'container'], message: `a unique container name per server, found "${c}" again (first at index ${first.i})` });
      });
      dup(s.services.map((v) => v.name), (i) => ['servers', si, 'services', i, 'name'], 'service name');
      dup(s.services.map((v) => `${v.host}:${v.port}`), (i) => ['servers', si, 'services', i, 'port'], 'port per server');
      dup(s.fstab.map((f) => f.mount), (i) => ['servers', si, 'fstab', i, 'mount'], 'fstab mount point');
      const inside = (p: string, parent: string) => p === parent || p.startsWith(parent + '/');
      // Containment is only judged between paths that are valid on their own (no cascading errors).
      const valid = (...ps: string[]) => ps.every((p) => absPath.safeParse(p).success);
      if (!valid(s.paths.backupMount, s.paths.artifacts, s.paths.configArtifacts)) return;
      for (const key of ['artifacts', 'configArtifacts'] as const) {
        if (!inside(s.paths[key], s.paths.backupMount) || s.paths[key] === s.paths.backupMount)
          ctx.addIssue({ code: 'custom', params: { described: true }, path: ['servers', si, 'paths', key], message: `a directory inside paths.backupMount (${s.paths.backupMount}), found ${s.paths[key]}` });
      }
      if (inside(s.paths.configArtifacts, s.paths.artifacts) || inside(s.paths.artifacts, s.paths.configArtifacts))
        ctx.addIssue({ code: 'custom', params: { described: true }, path: ['servers', si, 'paths', 'configArtifacts'], message: 'a directory beside paths.artifacts, not inside it' });
      const ext = s.repos.external;
      if (ext && valid(ext.path, ext.mount) && (!inside(ext.path, ext.mount) || ext.path === ext.mount))
        ctx.addIssue({ code: 'custom', params: { described: true }, path: ['servers', si, 'repos', 'external', 'path'], message: `a path inside repos.external.mount (${ext.mount}), found ${ext.path}` });
    });
    cfg.devs.forEach((d, di) => {
      if (d.packageManager === 'pacman' && d.pgBinRoot === '/usr/lib/postgresql')
        ctx.addIssue({ code: 'custom', params: { described: true }, path: ['devs', di, 'pgBinRoot'], message: 'a directory of its own for packageManager: pacman (e.g. /opt/pgb/postgresql: Arch keeps its binaries in /usr/bin and /usr/lib/postgresql holds its libraries), found the Debian default /usr/lib/postgresql' });
      dup(d.pullFrom, (i) => ['devs', di, 'pullFrom', i], 'server in pullFrom');
      d.pullFrom.forEach((p, i) => {
        if (!cfg.servers.some((s) => s.name === p))
          ctx.addIssue({ code: 'custom', params: { described: true }, path: ['devs', di, 'pullFrom', i], message: `the name of a configured server (${cfg.servers.map((s) => s.name).join(', ')}), found "${p}"` });
      });
    });
  });

export type Config = z.output<typeof configSchema>;
export type ServerConfig = Config['servers'][number];
export type ServiceConfig = ServerConfig['services'][number];
export type DevConfig = Config['devs'][number];
