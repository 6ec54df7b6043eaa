#!/usr/bin/env node
// pgb-gen: runs dist/cli/pgb-gen.cjs, the one-file bundle `npm run build` makes (scripts/bundle.mjs):
// Node then reads one file instead of resolving hundreds of modules. Falls back to the tsc output
// when the bundle is missing or older than it (a plain `tsc` since the last build).
'use strict';
const { readFileSync, statSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const Module = require('node:module');

const dist = join(__dirname, '..', 'dist', 'cli');
const stat = (f) => statSync(f, { throwIfNoEntry: false });
const bundle = join(dist, 'pgb-gen.cjs');
const bundleStat = stat(bundle);
if ((bundleStat?.mtimeMs ?? -1) >= (stat(join(dist, 'main.js'))?.mtimeMs ?? -1)) runBundle();
else import('../dist/cli/main.js');

// The bundle's V8 code cache (bytecode of what a build runs; scripts/bundle.mjs writes it) spares
// V8 most of the parsing and compiling. Its first line names the bundle's size and mtime: a cache
// of another bundle is never used. V8 itself rejects one made by another Node version or other
// flags and then compiles as usual; any other failure here falls back to a plain require.
function runBundle() {
  const cacheFile = `${bundle}.cache`;
  const id = `${bundleStat.size} ${bundleStat.mtimeMs}\n`;
  let script, fn;
  try {
    const vm = require('node:vm');
    let cachedData;
    const cache = stat(cacheFile) && readFileSync(cacheFile);
    if (cache && cache.subarray(0, id.length).toString('latin1') === id) cachedData = cache.subarray(id.length);
    const source = readFileSync(bundle, 'utf8').replace(/^#!/, '//');
    script = new vm.Script(Module.wrap(source), { filename: bundle, cachedData });
    fn = script.runInThisContext();
  } catch {
    require(bundle);
    return;
  }
  // Set by scripts/bundle.mjs for one training build: the cache then holds the functions it ran.
  if (process.env.PGB_GEN_WRITE_CODE_CACHE === '1') {
    process.once('exit', () => writeFileSync(cacheFile, Buffer.concat([Buffer.from(id, 'latin1'), script.createCachedData()])));
  }
  const mod = { exports: {}, filename: bundle, id: bundle };
  fn.call(mod.exports, mod.exports, Module.createRequire(bundle), mod, bundle, dist);
}
