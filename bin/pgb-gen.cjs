#!/usr/bin/env node
// pgb-gen (package.json "bin"): runs the CLI as `npm run build` (tsc) compiled it into dist/.
'use strict';
import('../dist/cli/main.js');
