#!/usr/bin/env node
// pgb-gen: runs dist/cli/pgb-gen.cjs, the one-file bundle `npm run build` makes (scripts/bundle.mjs):
// Node then reads one file instead of resolving hundreds of modules. Falls back to the tsc output
// when the bundle is missing or older than it (a plain `tsc` since the last build).
'use strict';
const { statSync } = require('node:fs');
const { join } = require('node:path');

const dist = join(__dirname, '..', 'dist', 'cli');
const mtime = (f) => statSync(f, { throwIfNoEntry: false })?.mtimeMs ?? -1;
const bundle = join(dist, 'pgb-gen.cjs');
if (mtime(bundle) >= mtime(join(dist, 'main.js'))) require(bundle);
else import('../dist/cli/main.js');
