// Artifact[] -> the bytes of generated/: rendered files plus each host's MANIFEST. Pure.
import { createHash } from 'node:crypto';
import type { Artifact } from '../plan/plan.js';
import { renderTemplate } from '../render/render.js';

export interface OutFile {
  /** Path relative to the output dir: <host>/... */
  path: string;
  content: string;
  executable: boolean;
}

/** The committed list of what build wrote: how a later build knows which stale files are its own. */
export const FILE_LIST = '.pgb-files';

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export function renderFiles(artifacts: Artifact[]): OutFile[] {
  const files: OutFile[] = [];
  const manifests = new Map<string, string[]>();
  for (const a of artifacts) {
    const content = renderTemplate(a.template, a.view);
    files.push({ path: `${a.host}/${a.file}`, content, executable: (parseInt(a.mode, 8) & 0o111) !== 0 });
    if (a.dest) {
      const lines = manifests.get(a.host) ?? [];
      lines.push(`${a.mode} ${a.owner} ${a.group} ${a.dest} ${sha256(content)}`);
      manifests.set(a.host, lines);
    }
  }
  for (const [host, lines] of manifests) {
    files.push({ path: `${host}/MANIFEST`, content: lines.sort((x, y) => (x.split(' ')[3] < y.split(' ')[3] ? -1 : 1)).join('\n') + '\n', executable: false });
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  files.push({ path: FILE_LIST, content: files.map((f) => f.path).join('\n') + '\n', executable: false });
  return files;
}
