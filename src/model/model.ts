// Config -> Model: defaults made explicit, derived values computed, lists sorted.
// Pure: no clock, environment, locale or hostname.
import { posix } from 'node:path';
import type { Config, DevConfig, ServerConfig } from '../config/schema.js';
import { archivePrefix, borgHandPrefix, borgStageDir, defaultLockFile, DRILL_SCHEDULE, receiverLock, slotName } from './names.js';
import { periodHours } from './schedule.js';

export interface ServiceModel {
  name: string;
  host: string;
  port: number;
  pgVersion: number;
  container: string;
  /** The container's image; when set the scripts know the service is a container and check it. */
  image?: string;
  /** Named volume or host directory at the container's PGDATA; undefined: docker inspect finds it. */
  dataVolume?: string;
  /** Where the PostgreSQL tools come from: the host's bin dir or the service's image. */
  tools: 'host' | 'image';
  wal: boolean;
  slot: string;
  /** Held by its WAL receiver while it streams. */
  receiverLock: string;
}

/** Every threshold resolved: the status script, the checker and the Prometheus rules print these. */
export interface ServerThresholds {
  basebackupWarnHours: number; basebackupCritHours: number; basebackupMinSizeRatio: number;
  walRetainedWarnBytes: number; walRetainedCritBytes: number;
  borgWarnHours: number; borgCritHours: number; externalWarnHours: number; externalCritHours: number;
  diskWarnFreeRatio: number; diskCritFreeRatio: number;
  checkWarnHours: number; checkCritHours: number; drillWarnHours: number; drillCritHours: number;
  /** How stale the checker's own textfile may get before the rules say it stopped. */
  checkerStaleHours: number;
}

export interface DevThresholds {
  pullWarnHours: number; pullCritHours: number; diskWarnFreeRatio: number; diskCritFreeRatio: number;
  drillWarnHours: number; drillCritHours: number;
  checkerStaleHours: number;
  /** Per pulled server (its own schedule counts): the newest pulled base backup's age. */
  pulledBasebackup: { server: string; warnHours: number; critHours: number }[];
}

export interface MonitoringModel<T> {
  textfileDir: string;
  checkSchedule: string;
  notify: { webhookUrlFile?: string; healthchecksUrlFile?: string; deadManUrlFile?: string; email?: string };
  thresholds: T;
}

export interface ServerModel extends Omit<ServerConfig, 'services' | 'monitoring'> {
  monitoring: MonitoringModel<ServerThresholds>;
  lockFile: string;
  services: ServiceModel[];
  /** Where a dev machine keeps each pulled tree, below <localBase>/<server>/: the tree's path relative
   * to the deepest directory holding both (the server serves them as two rsync modules, nothing else). */
  artifactsRel: string;
  configArtifactsRel: string;
  archivePrefix: string;
  /** The stable stage of the newest base backups for Borg (borg.stablePath); empty when off. */
  borgStageDir: string;
  /** Every Borg repository of the server: the primary, then the external drive's if any. */
  borgRepos: string[];
  /** PostgreSQL major versions of the services with tools: host, ascending, once each (client packages to install). */
  pgVersions: number[];
  /** Whether any service is a known container (image set): the scripts then need docker. */
  usesDocker: boolean;
  /** Prefix of a hand-run `borg` command using the scripts' passphrase file and state dir. */
  borgHandPrefix: string;
  /** Addresses for authorized_keys from=: explicit, else the pulling devs' addresses. */
  pullFrom: string[];
  pullKeys: string[];
  devsPulling: string[];
  /** One entry per dev machine pulling this server: its authorized_keys line (from= addresses, key if known). */
  /** The dev machines pulling from this server: where they log in from, and where their copy of its artifacts lies. */
  pullers: { name: string; from: string[]; publicKey?: string; artifactsCopy: string }[];
}

export interface DevModel extends Omit<DevConfig, 'monitoring'> {
  monitoring: MonitoringModel<DevThresholds>;
  servers: ServerModel[];
}

export interface Model {
  servers: ServerModel[];
  devs: DevModel[];
}

function commonParent(a: string, b: string): string {
  const as = a.split('/');
  const bs = b.split('/');
  let i = 0;
  while (i < as.length && i < bs.length && as[i] === bs[i]) i++;
  return as.slice(0, i).join('/') || '/';
}

/** Rounded to a minute: thresholds are printed, and 26.000000001 h helps nobody. */
const h = (x: number) => Math.round(x * 60) / 60;

function serverThresholds(s: ServerConfig): ServerThresholds {
  const t = s.monitoring.thresholds;
  const p = periodHours(s.schedule);
  const pc = periodHours(s.borg.checkSchedule);
  return {
    basebackupWarnHours: t.basebackupWarnHours ?? h(p + 2),
    basebackupCritHours: t.basebackupCritHours ?? h(2 * p + 2),
    basebackupMinSizeRatio: t.basebackupMinSizeRatio,
    walRetainedWarnBytes: t.walRetainedWarnBytes,
    walRetainedCritBytes: t.walRetainedCritBytes,
    borgWarnHours: t.borgWarnHours ?? h(p + 2),
    borgCritHours: t.borgCritHours ?? h(2 * p + 2),
    externalWarnHours: t.externalWarnHours,
    externalCritHours: t.externalCritHours,
    diskWarnFreeRatio: t.diskWarnFreeRatio,
    diskCritFreeRatio: t.diskCritFreeRatio,
    checkWarnHours: t.checkWarnHours ?? h(pc + 24),
    checkCritHours: t.checkCritHours ?? h(2 * pc + 24),
    drillWarnHours: t.drillWarnHours ?? h(periodHours(DRILL_SCHEDULE) + 24),
    drillCritHours: t.drillCritHours ?? h(2 * periodHours(DRILL_SCHEDULE) + 24),
    checkerStaleHours: h(Math.max(1, 2 * periodHours(s.monitoring.checkSchedule))),
  };
}

function devThresholds(d: DevConfig, servers: ServerConfig[]): DevThresholds {
  const t = d.monitoring.thresholds;
  const p = periodHours(d.schedule);
  return {
    pullWarnHours: t.pullWarnHours ?? h(p + 2),
    pullCritHours: t.pullCritHours ?? h(2 * p + 2),
    diskWarnFreeRatio: t.diskWarnFreeRatio,
    diskCritFreeRatio: t.diskCritFreeRatio,
    drillWarnHours: t.drillWarnHours,
    drillCritHours: t.drillCritHours,
    checkerStaleHours: h(Math.max(1, 2 * periodHours(d.monitoring.checkSchedule))),
    pulledBasebackup: servers.map((s) => {
      const ps = periodHours(s.schedule);
      return {
        server: s.name,
        warnHours: t.pulledBasebackupWarnHours ?? h(ps + p + 2),
        critHours: t.pulledBasebackupCritHours ?? h(2 * ps + p + 2),
      };
    }),
  };
}

function monitoring<T>(m: ServerConfig['monitoring'] | DevConfig['monitoring'], thresholds: T): MonitoringModel<T> {
  return { textfileDir: m.textfileDir, checkSchedule: m.checkSchedule, notify: { ...m.notify }, thresholds };
}

const byName = <T extends { name: string }>(xs: T[]) => [...xs].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));

export function buildModel(cfg: Config): Model {
  const servers = byName(cfg.servers).map((s): ServerModel => {
    const localRoot = commonParent(s.paths.artifacts, s.paths.configArtifacts);
    const devs = byName(cfg.devs).filter((d) => d.pullFrom.includes(s.name));
    const lockFile = s.paths.lockFile ?? defaultLockFile(s.name);
    return {
      ...s,
      monitoring: monitoring(s.monitoring, serverThresholds(s)),
      lockFile,
      services: byName(s.services).map((v) => ({
        name: v.name,
        host: v.host,
        port: v.port,
        pgVersion: v.pgVersion,
        container: v.container ?? `${v.name}_pg`,
        image: v.image,
        dataVolume: v.dataVolume,
        tools: v.tools,
        wal: v.wal,
        slot: slotName(v.name),
        receiverLock: receiverLock(lockFile, v.name),
      })),
      artifactsRel: posix.relative(localRoot, s.paths.artifacts),
      configArtifactsRel: posix.relative(localRoot, s.paths.configArtifacts),
      archivePrefix: archivePrefix(s.name),
      borgStageDir: s.borg.stablePath ? borgStageDir(s.paths.backupMount) : '',
      borgRepos: [s.repos.primary, ...(s.repos.external ? [s.repos.external.path] : [])],
      pgVersions: [...new Set(s.services.filter((v) => v.tools === 'host').map((v) => v.pgVersion))].sort((a, b) => a - b),
      usesDocker: s.services.some((v) => v.image !== undefined),
      borgHandPrefix: borgHandPrefix(s.borg.passphraseFile),
      pullFrom: s.ssh.allowFrom.length ? [...s.ssh.allowFrom] : devs.flatMap((d) => (d.address ? [d.address] : [])),
      pullKeys: devs.flatMap((d) => (d.publicKey ? [d.publicKey] : [])),
      devsPulling: devs.map((d) => d.name),
      pullers: devs.map((d) => ({
        name: d.name,
        from: s.ssh.allowFrom.length ? [...s.ssh.allowFrom] : d.address ? [d.address] : [],
        publicKey: d.publicKey,
        artifactsCopy: posix.join(d.localBase, s.name, posix.relative(localRoot, s.paths.artifacts)),
      })),
    };
  });
  const devs = byName(cfg.devs).map((d): DevModel => {
    const pulled = servers.filter((s) => d.pullFrom.includes(s.name));
    return {
      ...d,
      monitoring: monitoring(d.monitoring, devThresholds(d, byName(cfg.servers).filter((s) => d.pullFrom.includes(s.name)))),
      servers: pulled,
    };
  });
  return { servers, devs };
}
