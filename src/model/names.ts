// Every name an artifact carries (files, units, archives, locks) is made here and nowhere else.
export const serverScripts = {
  backupAll: 'pg_backup_all.sh',
  borgArtifacts: 'borg_pg_artifacts.sh',
  receiveWal: 'pgb_receivewal.sh',
  repoInit: 'pgb_repo_init.sh',
  restore: 'pgb-restore.sh',
  pullLinks: 'pgb_pull_links.sh',
  status: 'pgb-status.sh',
  notify: 'pgb-notify.sh',
  check: 'pgb-check.sh',
} as const;

export const devScripts = {
  pull: 'pull-server-backups.sh',
  keygen: 'pgb_pull_keygen.sh',
  restore: 'pgb-restore.sh',
  status: 'pgb-status.sh',
  notify: 'pgb-notify.sh',
  check: 'pgb-check.sh',
} as const;

/** Units every host gets: the notifier template (OnFailure=/OnSuccess= of every job) and the checker. */
export const monitorUnits = {
  notify: 'pgb-notify@.service',
  checkService: 'pgb-check.service',
  checkTimer: 'pgb-check.timer',
} as const;
/** What every job unit names: systemd starts one notifier instance per job that ends. */
export const onFailure = 'pgb-notify@%n.service';
/** OnSuccess= names its own instance: with one unit in both OnFailure= and OnSuccess=, systemd finds two
 * trigger sources and passes the notifier no $MONITOR_* (result, exit status, invocation id). */
export const onSuccess = 'pgb-notify@ok:%n.service';
/** Pulled in (Wants=) when a job starts: the Healthchecks /start ping, so a hung job is seen too. */
export const onStart = 'pgb-notify@start:%n.service';
/** The checker's state (last states, outbox) and the notifier's: StateDirectory=pgb-gen/monitor. */
export const MONITOR_STATE_DIR = '/var/lib/pgb-gen/monitor';
/** Each job's textfile in monitoring.textfileDir: one file per job, so jobs never overwrite each other. */
export const promFile = (job: string) => `pgb_${job.replace(/-/g, '_')}.prom`;
/** Job names: the label `job` of pgb_job_* and the name of their textfile. */
export const jobs = {
  backupAll: 'backup-all',
  borgPrimary: 'borg-primary',
  borgExternal: 'borg-external',
  borgCheck: 'borg-check',
  drill: 'restore-drill',
  receiveWal: (service: string) => `receivewal-${service}`,
  pull: 'pull',
  pullWal: 'pull-wal',
  status: 'status',
} as const;
/** Held by a WAL receiver while it streams: the checker's idle-safe proof that it runs (no pid files). */
export const receiverLock = (lockFile: string, service: string) =>
  `${lockFile.replace(/\/[^/]+$/, '') || ''}/pgb-receivewal-${service}.lock`;

export const serverUnits = {
  backupService: 'pg-backup-all.service',
  backupTimer: 'pg-backup-all.timer',
  borgPrimary: 'pgb-borg-primary.service',
  borgExternal: 'pgb-borg-external.service',
  borgCheck: 'pgb-borg-check.service',
  borgCheckTimer: 'pgb-borg-check.timer',
  receiveWal: 'pgb-receivewal@.service',
} as const;

/** The weekly restore drill, on servers (their copies in turn) and dev machines (the pulled copy). */
export const drillUnits = {
  service: 'pgb-restore-drill.service',
  timer: 'pgb-restore-drill.timer',
} as const;

/** The WAL receiver instance of one service. */
export const receiveWalUnit = (service: string) => `pgb-receivewal@${service}.service`;

export const devUnits = {
  pullService: 'pull-server-backups.service',
  pullTimer: 'pull-server-backups.timer',
  walService: 'pull-server-wal.service',
  walTimer: 'pull-server-wal.timer',
} as const;

export const UNIT_DIR = '/etc/systemd/system';
/** RandomizedDelaySec of the timers: a spread so several servers on one schedule do not start in the
 * same second. The README states them next to each schedule. */
export const timerDelay = { nightly: '5min', borgCheck: '5min', drill: '30min' } as const;
/** OnCalendar of the weekly restore drill: Sunday morning, after the night and the Borg check. */
export const DRILL_SCHEDULE = 'Sun *-*-* 05:30:00';
/** Where the README's steps keep copies of files they change by hand (pg_hba.conf of each service). */
export const CONFIG_BACKUP_DIR = '/root/pgb-config-backups';
export const SUDOERS_DIR = '/etc/sudoers.d';
/** sudo silently ignores drop-ins whose name holds a dot: never put one in. */
export const sudoersFile = (server: string) => `${SUDOERS_DIR}/pgb-pull-${server.replace(/\./g, '-')}`;
/** Borg's state dir (cache, security dir) of the scripts, systemd and hand runs alike (borg-env partial). */
export const BORG_BASE_DIR = '/var/lib/pgb-gen/borg';
/** What an operator puts before a `borg` command to use the scripts' passphrase file and state dir. */
export const borgHandPrefix = (passphraseFile: string) =>
  `sudo env BORG_PASSCOMMAND="sed -n s/^BORG_PASSPHRASE=//p ${passphraseFile}" BORG_BASE_DIR=${BORG_BASE_DIR}`;
export const defaultLockFile = (server: string) => `/run/lock/pgb-${server}.lock`;
export const archivePrefix = (server: string) => `${server}-pg-artifacts-`;
export const slotName = (service: string) => `pgb_${service.replace(/-/g, '_')}`;
/** The file that proves the artifacts tree is the mounted disk and not the bare mount point. */
export const SENTINEL = '.pgb-sentinel';
export const basebackupDir = 'basebackups';
/** Where pg_backup_all.sh hard-links each service's newest base backup for Borg (borg.stablePath). */
export const borgStageDir = (backupMount: string) => `${backupMount === '/' ? '' : backupMount}/.pgb-borg-stage`;
export const walDir = 'wal';
/** Below a dev machine's localBase: the pull's mirror of each server's artifacts module (the
 * server may change or empty it at will); verified backups and WAL are hard-linked out of it. */
export const devStagingDir = '.pgb-incoming';
export const RSYNC = '/usr/bin/rsync';
/** Root-owned rsync daemon config that defines the only two trees the pull key can read. */
export const rsyncdConfig = (server: string) => `/etc/pgb-gen/rsyncd-${server}.conf`;
/** Its modules: the dev machine pulls <user>@<host>::<module>/ and nothing else exists for it. */
export const rsyncModules = { artifacts: 'artifacts', config: 'config' } as const;
/** Lock file behind the daemon's "max connections". */
export const rsyncdLockFile = (server: string) => `/run/lock/pgb-rsyncd-${server}.lock`;
/** The argv after "sudo -n": rsync's daemon over the SSH channel, its config fixed by us, not by the client. */
export const pullArgv = (server: string) => [RSYNC, '--server', '--daemon', `--config=${rsyncdConfig(server)}`, '.'];
/** The one command the pull key may run on a server: a read-only rsync daemon of two modules, via sudo. */
export const pullCommand = (server: string) => `sudo -n ${pullArgv(server).join(' ')}`;
/** authorized_keys options for the pull key: no PTY, no forwarding, forced command, source addresses. */
export const authorizedKeyOptions = (server: string, from: readonly string[]) =>
  ['restrict', ...(from.length ? [`from="${from.join(',')}"`] : []), `command="${pullCommand(server)}"`].join(',');
