// Random valid configs render scripts that parse (bash -n) and are shellcheck-clean.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { render, tempDir } from './helpers.js';

const name = fc.stringMatching(/^[a-z][a-z0-9_-]{0,11}$/);
const segment = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,7}$/).filter((s) => s !== '.' && s !== '..' && !/^\.+$/.test(s));
const absPath = fc.array(segment, { minLength: 1, maxLength: 3 }).map((xs) => '/' + xs.join('/'));

const config = fc
  .record({
    servers: fc.uniqueArray(
      fc.record({
        name,
        mount: absPath,
        services: fc.uniqueArray(
          fc.record({ name, port: fc.integer({ min: 1, max: 65535 }), pgVersion: fc.integer({ min: 10, max: 18 }), wal: fc.boolean() }),
          { minLength: 1, maxLength: 5, selector: (s) => s.name },
        ),
        external: fc.boolean(),
        configPaths: fc.array(absPath, { maxLength: 3 }),
        rawDays: fc.integer({ min: 0, max: 30 }),
        parallelJobs: fc.integer({ min: 1, max: 8 }),
        compression: fc.constantFrom('lz4', 'zstd,3', 'none', 'auto,zstd,6'),
        host: fc.oneof(fc.ipV4(), fc.domain()),
      }),
      { minLength: 1, maxLength: 2, selector: (s) => s.name },
    ),
    devName: name,
    devAddress: fc.option(fc.ipV4(), { nil: undefined }),
  })
  .filter((c) => !c.servers.some((s) => s.name === c.devName))
  .map((c) => ({
    version: 1,
    servers: c.servers.map((s) => ({
      name: s.name,
      host: s.host,
      paths: { backupMount: s.mount, artifacts: `${s.mount}/pg`, configArtifacts: `${s.mount}/cfg` },
      repos: { primary: `${s.mount}/borg`, external: s.external ? {} : null },
      retention: { rawDays: s.rawDays },
      parallelJobs: s.parallelJobs,
      borg: { compression: s.compression },
      services: s.services.map((v, i) => ({ ...v, port: ((v.port + i) % 65535) + 1 })),
      configPaths: [...new Set(s.configPaths)],
    })),
    devs: [{ name: c.devName, pullFrom: c.servers.map((s) => s.name), ...(c.devAddress ? { address: c.devAddress } : {}) }],
  }));

describe('random valid configs', () => {
  it('render scripts that pass bash -n and shellcheck', () => {
    const dir = tempDir('pgb-prop-');
    let n = 0;
    try {
      fc.assert(
        fc.property(config, (cfg) => {
          const scripts = render(cfg).filter((f) => f.path.endsWith('.sh'));
          expect(scripts.length).toBeGreaterThan(0);
          for (const f of scripts) {
            const p = join(dir, String(n++), f.path);
            mkdirSync(join(p, '..'), { recursive: true });
            writeFileSync(p, f.content);
            const syntax = spawnSync('bash', ['-n', p], { encoding: 'utf8' });
            expect(syntax.stderr, f.path).toBe('');
          }
        }),
        { numRuns: 10, seed: 20261124 },
      );
      const files = spawnSync('find', [dir, '-name', '*.sh'], { encoding: 'utf8' }).stdout.trim().split('\n');
      const lint = spawnSync('shellcheck', ['-f', 'gcc', '-s', 'bash', ...files], { encoding: 'utf8' });
      expect(lint.stdout).toBe('');
      expect(lint.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
