// Config -> Model: defaults made explicit, derived values computed, lists sorted.
// Pure: no clock, environment, locale or hostname.
import { posix } from 'node:path';
import type { Config, DevConfig, ServerConfig } from '../config/schema.js';
import { archivePrefix, borgHandPrefix, defaultLockFile, slotName } from './names.js';

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
}

export interface ServerModel extends Omit<ServerConfig, 'services'> {
  lockFile: string;
  services: ServiceModel[];
  /** Where a dev machine keeps each pulled tree, below <localBase>/<server>/: the tree's path relative
   * to the deepest directory holding both (the server serves them as two rsync modules, nothing else). */
  artifactsRel: string;
  configArtifactsRel: string;
  archivePrefix: string;
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
  pullers: { name: string; from: string[]; publicKey?: string }[];
}

export interface DevModel extends DevConfig {
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

const byName = <T extends { name: string }>(xs: T[]) => [...xs].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));

export function buildModel(cfg: Config): Model {
  const servers = byName(cfg.servers).map((s): ServerModel => {
    const localRoot = commonParent(s.paths.artifacts, s.paths.configArtifacts);
    const devs = byName(cfg.devs).filter((d) => d.pullFrom.includes(s.name));
    return {
      ...s,
      lockFile: s.paths.lockFile ?? defaultLockFile(s.name),
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
      })),
      artifactsRel: posix.relative(localRoot, s.paths.artifacts),
      configArtifactsRel: posix.relative(localRoot, s.paths.configArtifacts),
      archivePrefix: archivePrefix(s.name),
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
      })),
    };
  });
  const devs = byName(cfg.devs).map((d): DevModel => ({
    ...d,
    servers: servers.filter((s) => d.pullFrom.includes(s.name)),
  }));
  return { servers, devs };
}
