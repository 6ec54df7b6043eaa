// Makes the fast start of bin/pgb-gen (run by `npm run build` and `npm ci`'s prepare, after tsc):
// 1. dist/cli/pgb-gen.cjs: the CLI and its dependencies in one CommonJS file (esbuild);
// 2. dist/pgb-gen.blob: a V8 start-up snapshot of it, so a run skips loading and evaluating
//    every module; dist/pgb-gen.blob.root records the checkout it was built in.
// Neither is required: on any failure this warns, removes the blob and exits 0, and bin/pgb-gen
// runs dist/cli/main.js as before.
import { spawnSync } from 'node:child_process';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const bundle = join(root, 'dist', 'cli', 'pgb-gen.cjs');
const blob = join(root, 'dist', 'pgb-gen.blob');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

// zod bundles ~40 locales (a third of the code) for z.locales.*, which pgb-gen never uses;
// its default English messages come from locales/en.js, which stays.
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(build) {
    build.onLoad({ filter: /zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, (args) => ({
      contents: 'export { default as en } from "./en.js";',
      resolveDir: dirname(args.path),
    }));
  },
};

async function makeBundle() {
  const { build } = await import('esbuild');
  await build({
    absWorkingDir: root,
    entryPoints: ['src/cli/main.ts'],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // Less source for V8 to parse; names are kept, so --debug stack traces stay readable.
    minifyWhitespace: true,
    minifySyntax: true,
    plugins: [zodEnglishOnly],
    // render.ts finds templates/ from import.meta.url; in CommonJS that is this file's URL.
    banner: { js: 'var __import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
    define: { 'import.meta.url': '__import_meta_url' },
    logLevel: 'warning',
  });
}

function makeSnapshot() {
  const tmp = `${blob}.tmp`;
  const node = (...args) => spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
  const made = node('--snapshot-blob', tmp, '--build-snapshot', bundle);
  if (made.status !== 0) throw new Error(`node --build-snapshot failed:\n${made.stderr}`);
  // Use the blob only if this Node really starts from it and runs the CLI.
  const tried = node('--snapshot-blob', tmp, '--', '--version');
  if (tried.status !== 0 || tried.stdout.trim() !== version) throw new Error(`the snapshot does not run:\n${tried.stderr}`);
  renameSync(tmp, blob);
  writeFileSync(`${blob}.root`, `${root}\n`);
}

try {
  rmSync(`${blob}.root`, { force: true });
  rmSync(blob, { force: true });
  await makeBundle();
  makeSnapshot();
} catch (e) {
  rmSync(`${blob}.tmp`, { force: true });
  console.warn(`pgb-gen: no start-up snapshot (bin/pgb-gen runs dist/cli/main.js): ${e.message}`);
}
