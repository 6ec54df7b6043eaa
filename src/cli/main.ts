#!/usr/bin/env node
// pgb-gen command line. Exit codes: 0 ok, 1 check/lint failed, 2 bad config or usage.
import { Command, CommanderError } from 'commander';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError, formatProblem, lintConfig, loadConfig } from '../config/load.js';
import { configSchema } from '../config/schema.js';
import { planConfig, renderConfig } from '../pipeline.js';
import { writeFiles } from '../output/write.js';
import { findDrift, shellcheck } from '../output/check.js';
import { TEMPLATE_DIR } from '../render/render.js';

const pkg = JSON.parse(readFileSync(join(TEMPLATE_DIR, '..', 'package.json'), 'utf8')) as { version: string };

class ExitError extends Error {
  constructor(readonly code: number, message: string) { super(message); }
}

const program = new Command('pgb-gen')
  .description('Generate hardened PostgreSQL + Borg disaster-recovery scripts, units and sudoers from one config')
  .version(pkg.version)
  .option('-c, --config <file>', 'config file (YAML or JSON)', 'pgb.config.yaml')
  .option('-o, --out <dir>', 'output directory', 'generated')
  .option('--debug', 'show stack traces')
  .exitOverride()
  .showHelpAfterError()
  .addHelpText('after', `
Examples:
  $ pgb-gen init                 # write an annotated pgb.config.yaml
  $ pgb-gen validate             # check it, with file:line:col of every mistake
  $ pgb-gen build                # write generated/<host>/ for every host
  $ pgb-gen check                # CI: fail if generated/ drifted or shellcheck finds anything
  $ pgb-gen plan                 # every file per host with destination, owner and mode
  $ pgb-gen schema > pgb.schema.json`);

const opts = () => program.opts<{ config: string; out: string; debug?: boolean }>();

program.command('init')
  .description('write an annotated pgb.config.yaml with the runbook\'s defaults')
  .option('-f, --force', 'overwrite an existing file')
  .addHelpText('after', '\nExample:\n  $ pgb-gen init -c pgb.config.yaml')
  .action((o: { force?: boolean }) => {
    const target = opts().config;
    if (existsSync(target) && !o.force) {
      throw new ExitError(2, `${target} exists (a clone of pgb-gen ships the example config): run init in your own directory `
        + '(`npm link` in the clone puts pgb-gen on PATH; then mkdir ~/pgb-site && cd ~/pgb-site && pgb-gen init), '
        + 'or name a new file with -c FILE, or overwrite with --force');
    }
    copyFileSync(join(TEMPLATE_DIR, 'init', 'pgb.config.yaml'), target);
    console.log(`wrote ${target}: edit it, then run pgb-gen validate (and validate --strict before a real install)`);
  });

program.command('validate')
  .description('validate the config; every problem as file:line:col path: message')
  .option('--strict', 'also refuse (exit 2) what only warns: placeholder disk UUIDs, mounts without an fstab line')
  .addHelpText('after', '\nExamples:\n  $ pgb-gen validate -c examples/spec-example.yaml\n  $ pgb-gen validate --strict      # before building for a real install')
  .action((o: { strict?: boolean }) => {
    const { config: cfg, warnings } = lintConfig(opts().config);
    for (const w of warnings) console.error(`${formatProblem({ ...w, message: `warning: ${w.message}` })}`);
    if (o.strict && warnings.length) throw new ExitError(2, `${opts().config}: ${warnings.length} warning(s); --strict refuses them`);
    console.log(`${opts().config}: valid (${cfg.servers.length} server(s), ${cfg.devs.length} dev machine(s))${warnings.length ? `, ${warnings.length} warning(s)` : ''}`);
  });

program.command('build')
  .description('write generated/<host>/ for every server and dev machine (deterministic)')
  .addHelpText('after', '\nExample:\n  $ pgb-gen build -c pgb.config.yaml -o generated')
  .action(() => {
    const { config, warnings } = lintConfig(opts().config);
    for (const w of warnings) console.error(`${formatProblem({ ...w, message: `warning: ${w.message}` })}`);
    const files = renderConfig(config);
    const { written, removed } = writeFiles(opts().out, files);
    for (const r of removed) console.log(`removed ${join(opts().out, r)}`);
    console.log(`${opts().out}: ${files.length} files, ${written} changed, ${removed.length} removed`);
  });

program.command('check')
  .description('fail (exit 1) if generated/ differs from the config or any script has a shellcheck finding')
  .addHelpText('after', '\nExample:\n  $ SHELLCHECKJS_BIN=/usr/bin/shellcheck pgb-gen check')
  .action(() => {
    const files = renderConfig(loadConfig(opts().config));
    const drift = findDrift(opts().out, files);
    for (const d of drift) console.error(`${d.kind}: ${join(opts().out, d.path)}${d.diff ? '\n' + d.diff : ''}`);
    const lint = shellcheck(files);
    process.stderr.write(lint.findings);
    if (drift.length || !lint.ok) throw new ExitError(1, `check failed: ${drift.length} drifted file(s), shellcheck ${lint.ok ? 'clean' : 'has findings'}`);
    console.log(`${opts().out}: up to date, shellcheck clean`);
  });

program.command('plan')
  .description('print, per host, every file with its destination, owner and mode')
  .addHelpText('after', '\nExample:\n  $ pgb-gen plan -c pgb.config.yaml')
  .action(() => {
    let host = '';
    for (const a of planConfig(loadConfig(opts().config))) {
      if (a.host !== host) { host = a.host; console.log(`${host}:`); }
      console.log(`  ${a.mode} ${a.owner}:${a.group} ${a.dest ?? `(operator) ${a.file}`}`);
    }
  });

program.command('schema')
  .description('print the config\'s JSON Schema (for editor completion)')
  .addHelpText('after', '\nExample:\n  $ pgb-gen schema > pgb.schema.json')
  .action(() => {
    console.log(JSON.stringify(z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }), null, 2));
  });

/** Parses the command line; `argv` is in commander's `from: 'user'` form (no node, no script). */
function run(argv: string[]): void {
  try {
    program.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : 2;
    } else if (e instanceof ConfigError) {
      console.error(e.message);
      process.exitCode = 2;
    } else if (e instanceof ExitError) {
      console.error(e.message);
      process.exitCode = e.code;
    } else {
      console.error(opts().debug ? e : `error: ${(e as Error).message}`);
      process.exitCode = 2;
    }
  }
}

run(process.argv.slice(2));
