// Model -> Artifact[]: which file lands where on which host, with owner, mode and template.
import type { DevModel, Model, ServerModel } from '../model/model.js';
import * as names from '../model/names.js';

export interface Artifact {
  host: string;
  /** Path inside generated/<host>/ */
  file: string;
  /** Where install.sh places it on the host; absent for snippets and host-level files. */
  dest?: string;
  owner: string;
  group: string;
  mode: string;
  template: string;
  view: object;
}

const join = (dir: string, f: string) => `${dir}/${f}`;
const installed = (host: string, dest: string, mode: string, template: string, view: object): Artifact => ({
  host, file: `root${dest}`, dest, owner: 'root', group: 'root', mode, template, view,
});
const local = (host: string, file: string, mode: string, template: string, view: object): Artifact => ({
  host, file, owner: 'root', group: 'root', mode, template, view,
});

/** The monitoring view of a server: what pgb-status.sh, pgb-check.sh, pgb-notify.sh and the rules need. */
function serverMonitorView(s: ServerModel) {
  return {
    kind: 'server' as const,
    host: s.name,
    scriptsDir: s.paths.scriptsDir,
    textfileDir: s.monitoring.textfileDir,
    checkSchedule: s.monitoring.checkSchedule,
    notify: s.monitoring.notify,
    thresholds: s.monitoring.thresholds,
    backupMount: s.paths.backupMount,
    baseDir: `${s.paths.artifacts}/${names.basebackupDir}`,
    walDir: `${s.paths.artifacts}/${names.walDir}`,
    pgBinRoot: s.paths.pgBinRoot,
    replUser: s.replication.user,
    replPassFile: s.replication.passwordFile,
    services: s.services,
    primaryDir: s.repos.primary.startsWith('/') ? s.repos.primary : '',
    external: s.repos.external,
  };
}

function devMonitorView(d: DevModel) {
  return {
    kind: 'dev' as const,
    host: d.name,
    scriptsDir: d.scriptsDir,
    textfileDir: d.monitoring.textfileDir,
    checkSchedule: d.monitoring.checkSchedule,
    notify: d.monitoring.notify,
    thresholds: d.monitoring.thresholds,
    localBase: d.localBase,
    pulled: d.servers.map((s) => {
      const t = d.monitoring.thresholds.pulledBasebackup.find((p) => p.server === s.name)!;
      return {
        server: s.name,
        services: s.services.map((v) => v.name),
        basebackupsDir: `${d.localBase}/${s.name}/${s.artifactsRel}/${names.basebackupDir}`,
        warnHours: t.warnHours,
        critHours: t.critHours,
      };
    }),
  };
}

/** Files every host gets for monitoring: the three scripts, the notifier and checker units, the rules. */
function monitorArtifacts(host: string, m: ReturnType<typeof serverMonitorView> | ReturnType<typeof devMonitorView>): Artifact[] {
  const view = { m, names };
  const unit = (u: string) => installed(host, join(names.UNIT_DIR, u), '0644', `monitor/units/${u}`, view);
  return [
    installed(host, join(m.scriptsDir, names.serverScripts.status), '0750', 'monitor/pgb-status.sh', view),
    installed(host, join(m.scriptsDir, names.serverScripts.notify), '0750', 'monitor/pgb-notify.sh', view),
    installed(host, join(m.scriptsDir, names.serverScripts.check), '0750', 'monitor/pgb-check.sh', view),
    unit(names.monitorUnits.notify),
    unit(names.monitorUnits.checkService),
    unit(names.monitorUnits.checkTimer),
    local(host, 'snippets/pgb-alerts.rules.yml', '0644', 'monitor/snippets/pgb-alerts.rules.yml', view),
  ];
}

/** The notification URL files: secrets like the others, created empty by install.sh. */
function monitorSecrets(n: { webhookUrlFile?: string; healthchecksUrlFile?: string; deadManUrlFile?: string }) {
  return [
    ...(n.webhookUrlFile ? [{ path: n.webhookUrlFile, mode: '0600', hint: 'the ntfy-compatible webhook URL (https://ntfy.sh/<topic>), alone on one line' }] : []),
    ...(n.healthchecksUrlFile ? [{ path: n.healthchecksUrlFile, mode: '0600', hint: 'the Healthchecks ping URL with its ping key (https://hc-ping.com/<ping-key>), alone on one line' }] : []),
    ...(n.deadManUrlFile ? [{ path: n.deadManUrlFile, mode: '0600', hint: 'the dead man\'s switch URL (a Healthchecks check URL), alone on one line' }] : []),
  ];
}

/** Homes are hidden from the units unless a path they use lives under one. */
const underHome = (...paths: string[]) => paths.some((p) => /^\/(home|root|run\/user)(\/|$)/.test(p));

/** The drill unit's view: what it reads and writes, and what it runs after. */
interface DrillView {
  kind: 'server' | 'dev';
  host: string;
  scriptsDir: string;
  copies: string;
  reads: string;
  readsWhy: string;
  after: string[];
  afterWhy: string;
  /** Local Borg repositories it may restore from (their lock files are written). */
  repos: string[];
  usesDocker: boolean;
  textfileDir: string;
  underHome: boolean;
}

function serverDrillView(s: ServerModel): DrillView {
  return {
    kind: 'server',
    host: s.name,
    scriptsDir: s.paths.scriptsDir,
    copies: 'each week from another copy: raw, primary Borg, external Borg',
    reads: s.paths.artifacts,
    readsWhy: 'Reads the raw artifacts: ordered after the backup disk\'s mount, never run on the bare mount point.',
    after: [names.serverUnits.backupService, names.serverUnits.borgPrimary],
    afterWhy: 'Not while the night\'s base backups are being taken or archived.',
    repos: s.borgRepos.filter((r) => !r.startsWith('ssh://')),
    usesDocker: s.usesDocker,
    textfileDir: s.monitoring.textfileDir,
    underHome: false,
  };
}

function devDrillView(d: DevModel): DrillView {
  return {
    kind: 'dev',
    host: d.name,
    scriptsDir: d.scriptsDir,
    copies: `the copy pulled from ${d.servers.map((s) => s.name).join(', ')}`,
    reads: d.localBase,
    readsWhy: 'Reads the pulled copy: ordered after the mount it lives on.',
    after: [names.devUnits.pullService, names.devUnits.walService],
    afterWhy: 'Not while a pull changes the copy.',
    repos: [],
    usesDocker: d.servers.some((s) => s.usesDocker),
    textfileDir: d.monitoring.textfileDir,
    underHome: underHome(d.localBase),
  };
}

function drillArtifacts(host: string, drill: DrillView): Artifact[] {
  const view = { drill, names };
  return [names.drillUnits.service, names.drillUnits.timer]
    .map((u) => installed(host, join(names.UNIT_DIR, u), '0644', `restore/units/${u}`, view));
}

function serverArtifacts(s: ServerModel): Artifact[] {
  const view = { s, names };
  const sbin = s.paths.scriptsDir;
  const unit = (u: string, t: string) => installed(s.name, join(names.UNIT_DIR, u), '0644', `server/units/${t}`, view);
  const list: Artifact[] = [
    installed(s.name, join(sbin, names.serverScripts.backupAll), '0750', 'server/pg_backup_all.sh', view),
    installed(s.name, join(sbin, names.serverScripts.borgArtifacts), '0750', 'server/borg_pg_artifacts.sh', view),
    installed(s.name, join(sbin, names.serverScripts.receiveWal), '0750', 'server/pgb_receivewal.sh', view),
    installed(s.name, join(sbin, names.serverScripts.repoInit), '0750', 'server/pgb_repo_init.sh', view),
    installed(s.name, join(sbin, names.serverScripts.restore), '0750', 'restore/pgb-restore.sh', { ...view, restore: restoreViewForServer(s) }),
    unit(names.serverUnits.backupService, 'pg-backup-all.service'),
    unit(names.serverUnits.backupTimer, 'pg-backup-all.timer'),
    unit(names.serverUnits.borgPrimary, 'pgb-borg-primary.service'),
    unit(names.serverUnits.borgCheck, 'pgb-borg-check.service'),
    unit(names.serverUnits.borgCheckTimer, 'pgb-borg-check.timer'),
    unit(names.serverUnits.receiveWal, 'pgb-receivewal@.service'),
    ...drillArtifacts(s.name, serverDrillView(s)),
    { ...installed(s.name, names.sudoersFile(s.name), '0440', 'server/sudoers', view) },
    installed(s.name, names.rsyncdConfig(s.name), '0644', 'server/rsyncd.conf', view),
    installed(s.name, join(sbin, names.serverScripts.pullLinks), '0750', 'server/pgb_pull_links.sh', view),
    local(s.name, 'snippets/fstab', '0644', 'server/snippets/fstab', view),
    local(s.name, 'snippets/pg_hba.conf', '0644', 'server/snippets/pg_hba.conf', view),
    local(s.name, 'snippets/replication-role.sql', '0644', 'server/snippets/replication-role.sql', view),
    local(s.name, 'snippets/apply-replication-role.sh', '0750', 'server/snippets/apply-replication-role.sh', view),
    local(s.name, 'snippets/authorized_keys', '0644', 'server/snippets/authorized_keys', view),
    local(s.name, 'snippets/pg-borg.env.template', '0600', 'server/snippets/pg-borg.env.template', view),
    local(s.name, 'install.sh', '0750', 'install/install.sh', { host: s.name, kind: 'server', s, names, secrets: serverSecrets(s), dirs: serverDirs(s), timers: serverTimers(s), pullUser: s.ssh.user }),
    local(s.name, 'README.md', '0644', 'server/README.md', { ...view, m: serverMonitorView(s) }),
  ];
  if (s.repos.external) list.push(unit(names.serverUnits.borgExternal, 'pgb-borg-external.service'));
  list.push(...monitorArtifacts(s.name, serverMonitorView(s)));
  return list;
}

function serverSecrets(s: ServerModel) {
  return [
    { path: s.borg.passphraseFile, mode: '0600', hint: 'BORG_PASSPHRASE=<the passphrase of both repositories>' },
    { path: s.replication.passwordFile, mode: '0600', hint: `the password of the ${s.replication.user} role, alone on one line` },
    ...monitorSecrets(s.monitoring.notify),
  ];
}

function serverDirs(s: ServerModel) {
  return [
    { path: s.paths.artifacts, mode: '0750' },
    { path: `${s.paths.artifacts}/${names.basebackupDir}`, mode: '0750' },
    { path: `${s.paths.artifacts}/${names.walDir}`, mode: '0750' },
    { path: s.paths.configArtifacts, mode: '0750' },
    // node_exporter's textfile directory: its user reads the 0644 files the jobs write.
    { path: s.monitoring.textfileDir, mode: '0755' },
  ];
}

/** Units install.sh enables and starts; `needs` names the secret a unit uses the moment it starts
 * (a timer only waits for its time), so install.sh leaves it stopped while that file is empty. */
export interface EnableUnit { unit: string; needs: string }

function serverTimers(s: ServerModel): EnableUnit[] {
  const wal = s.services.filter((v) => v.wal).map((v) => ({ unit: names.receiveWalUnit(v.name), needs: s.replication.passwordFile }));
  return [
    ...[names.serverUnits.backupTimer, names.serverUnits.borgCheckTimer, names.drillUnits.timer, names.monitorUnits.checkTimer]
      .map((unit) => ({ unit, needs: '' })),
    ...wal,
  ];
}

export interface RestoreSource {
  server: string;
  /** Raw artifacts tree (server's own, or a dev machine's pulled copy). */
  artifacts: string;
  primary?: string;
  external?: { mount: string; path: string };
  passphraseFile?: string;
  archivePrefix: string;
  /** borg.stablePath's stage on the server ('' when off or on a dev machine): the newest base
   *  backups there are restored from a Borg archive without listing it. */
  stage: string;
  /** image: the service's container image ('' when not a known container): verification and the
   *  drill run in a throwaway container of it; container and dataVolume: where --into-container
   *  restores ('' on a dev machine, which has no such container). */
  services: { name: string; pgVersion: number; image: string; tools: 'host' | 'image'; container: string; dataVolume: string }[];
}

function restoreServices(s: ServerModel, local: boolean): RestoreSource['services'] {
  return s.services.map((v) => ({
    name: v.name,
    pgVersion: v.pgVersion,
    image: v.image ?? '',
    tools: v.tools,
    container: local && v.image !== undefined ? v.container : '',
    dataVolume: local ? v.dataVolume ?? '' : '',
  }));
}

function restoreViewForServer(s: ServerModel) {
  return {
    pgBinRoot: s.paths.pgBinRoot,
    jobs: s.restoreJobs,
    drillMetrics: `${s.monitoring.textfileDir}/${names.promFile(names.jobs.drill)}`,
    sources: [{
      server: s.name,
      artifacts: s.paths.artifacts,
      primary: s.repos.primary,
      external: s.repos.external ? { mount: s.repos.external.mount, path: s.repos.external.path } : undefined,
      passphraseFile: s.borg.passphraseFile,
      archivePrefix: s.archivePrefix,
      stage: s.borgStageDir,
      services: restoreServices(s, true),
    }] as RestoreSource[],
  };
}

function restoreViewForDev(d: DevModel) {
  return {
    pgBinRoot: d.pgBinRoot,
    jobs: d.restoreJobs,
    drillMetrics: `${d.monitoring.textfileDir}/${names.promFile(names.jobs.drill)}`,
    sources: d.servers.map((s): RestoreSource => ({
      server: s.name,
      artifacts: `${d.localBase}/${s.name}/${s.artifactsRel}`,
      archivePrefix: s.archivePrefix,
      stage: '',
      services: restoreServices(s, false),
    })),
  };
}

function devArtifacts(d: DevModel): Artifact[] {
  const keyOptions = (s: ServerModel) =>
    names.authorizedKeyOptions(s.name, s.ssh.allowFrom.length ? s.ssh.allowFrom : d.address ? [d.address] : []);
  const view = { d, names, keyOptions };
  const sbin = d.scriptsDir;
  const unit = (u: string, t: string) => installed(d.name, join(names.UNIT_DIR, u), '0644', `dev/units/${t}`, view);
  return [
    ...monitorArtifacts(d.name, devMonitorView(d)),
    installed(d.name, join(sbin, names.devScripts.pull), '0750', 'dev/pull-server-backups.sh', view),
    installed(d.name, join(sbin, names.devScripts.keygen), '0750', 'dev/pgb_pull_keygen.sh', view),
    installed(d.name, join(sbin, names.devScripts.restore), '0750', 'restore/pgb-restore.sh', { ...view, restore: restoreViewForDev(d) }),
    unit(names.devUnits.pullService, 'pull-server-backups.service'),
    unit(names.devUnits.pullTimer, 'pull-server-backups.timer'),
    unit(names.devUnits.walService, 'pull-server-wal.service'),
    unit(names.devUnits.walTimer, 'pull-server-wal.timer'),
    ...drillArtifacts(d.name, devDrillView(d)),
    local(d.name, 'snippets/borg-allowlist.txt', '0644', 'dev/snippets/borg-allowlist.txt', view),
    local(d.name, 'install.sh', '0750', 'install/install.sh', {
      host: d.name, kind: 'dev', d, names, secrets: monitorSecrets(d.monitoring.notify),
      dirs: [{ path: d.localBase, mode: '0700' }, ...d.servers.map((s) => ({ path: `${d.localBase}/${s.name}`, mode: '0700' })),
        { path: d.monitoring.textfileDir, mode: '0755' }],
      // The pulls and the drill of their copy need the pull key; the checker runs from the start (it reports the missing pulls).
      timers: [...[names.devUnits.pullTimer, names.devUnits.walTimer, names.drillUnits.timer].map((unit) => ({ unit, needs: d.sshKey })),
        { unit: names.monitorUnits.checkTimer, needs: '' }],
    }),
    local(d.name, 'README.md', '0644', 'dev/README.md', { ...view, m: devMonitorView(d) }),
  ];
}

export function plan(model: Model): Artifact[] {
  const all = [...model.servers.flatMap(serverArtifacts), ...model.devs.flatMap(devArtifacts)];
  return all.sort((a, b) => (a.host === b.host ? (a.file < b.file ? -1 : 1) : a.host < b.host ? -1 : 1));
}
