// Makes dist/cli/pgb-gen.cjs, the CLI and its dependencies in one CommonJS file (esbuild), which
// bin/pgb-gen.cjs runs: one file to read instead of hundreds of modules to resolve (run by
// `npm run build` and `npm ci`'s prepare, after tsc). Not required: on any failure this warns,
// removes the bundle and exits 0, and bin/pgb-gen.cjs runs dist/cli/main.js.
// (A V8 start-up snapshot of the bundle was measured too: no faster, so not kept.)
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const bundle = join(root, 'dist', 'cli', 'pgb-gen.cjs');
const codeCache = `${bundle}.cache`;

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

// The templates compiled at build time (src/render/precompile.ts, from tsc's output) in place of
// the empty src/render/precompiled.ts: the bundle skips eta's compile of every template it renders.
const precompiledTemplates = {
  name: 'precompiled-templates',
  setup(build) {
    build.onLoad({ filter: /src[\\/]render[\\/]precompiled\.ts$/ }, async () => {
      const { precompiledModule } = await import('../dist/render/precompile.js');
      return { contents: precompiledModule(), loader: 'js' };
    });
  },
};

// Modules most runs never use, loaded on first use of an export instead of at start-up:
// child_process (commander's executable subcommands, pgb-gen check), net (isIP, for configs that
// name hosts) and yaml (src/config/load.ts locates problems in an invalid config with it; being a
// quarter of the code, it is a bundle of its own beside this one).
const yamlBundle = join(root, 'dist', 'cli', 'pgb-gen-yaml.cjs');
const lazy = {
  'node:child_process': 'require("node:child_process")',
  'node:net': 'require("node:net")',
  yaml: 'require(require("node:path").join(__dirname, "pgb-gen-yaml.cjs"))',
};
const lazyModules = {
  name: 'lazy-modules',
  setup(build) {
    build.onResolve({ filter: /^((node:)?(child_process|net)|yaml)$/ }, (args) =>
      args.namespace === 'lazy'
        ? { path: args.path, external: true } // the require() in the stand-in itself
        : { path: args.path.replace(/^(child_process|net)$/, 'node:$1'), namespace: 'lazy' });
    build.onLoad({ filter: /.*/, namespace: 'lazy' }, async (args) => {
      const names = Object.keys(await import(args.path)).filter((k) => k !== 'default');
      return {
        contents: `let m;\nconst load = () => (m ??= ${lazy[args.path]});\n` +
          `for (const k of ${JSON.stringify(names)}) Object.defineProperty(exports, k, { enumerable: true, get: () => load()[k] });\n`,
        loader: 'js',
      };
    });
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
    plugins: [zodEnglishOnly, precompiledTemplates, lazyModules],
    // render.ts finds templates/ from import.meta.url; in CommonJS that is this file's URL.
    banner: { js: 'var __import_meta_url = require("node:url").pathToFileURL(__filename).href;' },
    define: { 'import.meta.url': '__import_meta_url' },
    logLevel: 'warning',
  });
  await build({
    absWorkingDir: root,
    stdin: { contents: 'module.exports = require("yaml");', resolveDir: root },
    outfile: yamlBundle,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'warning',
  });
}

// bin/pgb-gen.cjs's V8 code cache of the bundle: one build of the init config through bin itself
// (same node, same flags as an operator's run), which writes the cache when it exits.
function makeCodeCache() {
  const out = mkdtempSync(join(tmpdir(), 'pgb-gen-cache-'));
  try {
    const r = spawnSync(process.execPath, [join(root, 'bin', 'pgb-gen.cjs'), 'build', '-c', join(root, 'templates', 'init', 'pgb.config.yaml'), '-o', out], {
      env: { ...process.env, PGB_GEN_WRITE_CODE_CACHE: '1' },
      encoding: 'utf8',
    });
    if (r.status !== 0 || !existsSync(codeCache)) throw new Error(r.error?.message ?? (r.stderr || `exit ${r.status}`));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

rmSync(codeCache, { force: true });
try {
  await makeBundle();
} catch (e) {
  rmSync(bundle, { force: true });
  rmSync(yamlBundle, { force: true });
  console.warn(`pgb-gen: no bundle (bin/pgb-gen.cjs runs dist/cli/main.js): ${e.message}`);
}
if (existsSync(bundle)) {
  try {
    makeCodeCache();
  } catch (e) {
    rmSync(codeCache, { force: true });
    console.warn(`pgb-gen: no code cache (bin/pgb-gen.cjs compiles the bundle): ${e.message}`);
  }
}
