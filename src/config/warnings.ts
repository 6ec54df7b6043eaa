// Problems a config can build with but an operator must fix before installing: the example's
// placeholder disk UUIDs, and mounts the scripts need that have no fstab line. `validate` prints
// them; `validate --strict` (before an install) refuses them.
import type { Config } from './schema.js';

/** The UUIDs of the example and of `init`'s annotated config: placeholders, never a real disk. */
export const EXAMPLE_FSTAB_UUIDS: readonly string[] = [
  '52e71a97-d76e-4f58-a182-ec73a59e7fe8',
  '9c4b2f60-3d1e-4a8b-b7f2-6e0a1c5d8e39',
];

export interface ConfigWarning {
  path: (string | number)[];
  message: string;
}

export function configWarnings(cfg: Config): ConfigWarning[] {
  const out: ConfigWarning[] = [];
  cfg.servers.forEach((s, si) => {
    s.fstab.forEach((f, fi) => {
      if (EXAMPLE_FSTAB_UUIDS.includes(f.uuid.toLowerCase()))
        out.push({ path: ['servers', si, 'fstab', fi, 'uuid'], message: `the example's placeholder UUID for ${f.mount}: put the UUID that \`lsblk -o NAME,UUID\` prints for that disk on ${s.name}` });
    });
    const mounts = new Set(s.fstab.map((f) => f.mount));
    const need = [{ mount: s.paths.backupMount, what: 'the backup disk' }];
    if (s.repos.external) need.push({ mount: s.repos.external.mount, what: 'the external drive' });
    for (const n of need) {
      if (!mounts.has(n.mount))
        out.push({ path: ['servers', si, 'fstab'], message: `no fstab line for ${n.what} at ${n.mount}: add { mount: ${n.mount}, uuid: ... } so it is mounted when present` });
    }
  });
  return out;
}
