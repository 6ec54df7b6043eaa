// Makes dist/cli/pgb-gen.cjs, the CLI and its dependencies in one CommonJS file (esbuild), which
// bin/pgb-gen.cjs runs: one file to read instead of hundreds of modules to resolve (run by
// `npm run build` and `npm ci`'s prepare, after tsc). Not required: on any failure this warns,
// removes the bundle and exits 0, and bin/pgb-gen.cjs runs dist/cli/main.js.
// (A V8 start-up snapshot of the bundle was measured too: no faster, so not kept.)
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const bundle = join(root, 'dist', 'cli', 'pgb-gen.cjs');

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

try {
  await makeBundle();
} catch (e) {
  rmSync(bundle, { force: true });
  console.warn(`pgb-gen: no bundle (bin/pgb-gen.cjs runs dist/cli/main.js): ${e.message}`);
}
