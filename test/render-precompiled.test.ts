// The bundle renders with templates compiled at build time (src/render/precompile.ts, put in by
// scripts/bundle.mjs); the tsc output compiles them at run time. Both must give the same bytes.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { renderConfigFile } from '../src/pipeline.js';
import { precompiledModule } from '../src/render/precompile.js';
import type { Precompiled } from '../src/render/precompiled.js';
import { REPO_ROOT, tempDir } from './helpers.js';

const example = join(REPO_ROOT, 'pgb.config.yaml');
const BUNDLE = join(REPO_ROOT, 'dist', 'cli', 'pgb-gen.cjs');
const BIN = join(REPO_ROOT, 'bin', 'pgb-gen.cjs');
const env = { ...process.env, NODE_OPTIONS: '' };

/** precompiledModule()'s functions, each counting its calls in `used`. */
async function loadPrecompiled(used: Set<string>): Promise<Precompiled> {
  const file = join(tempDir('pgb-precompiled-'), 'precompiled.mjs');
  writeFileSync(file, precompiledModule());
  const { precompiled } = (await import(pathToFileURL(file).href)) as { precompiled: Precompiled };
  for (const [name, p] of Object.entries(precompiled)) {
    const fn = p.fn;
    p.fn = function (...args) {
      used.add(name);
      return fn.apply(this, args);
    };
  }
  return precompiled;
}

/** Every file under dir: path -> mode and bytes. */
function tree(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else files[relative(dir, p)] = `${(statSync(p).mode & 0o777).toString(8)} ${readFileSync(p, 'utf8')}`;
    }
  };
  walk(dir);
  return files;
}

describe('precompiled templates', () => {
  afterEach(() => {
    vi.doUnmock('../src/render/precompiled.js');
    vi.resetModules();
  });

  it('render the example config byte for byte as the templates compiled at run time do', async () => {
    const runtime = renderConfigFile(example);
    const used = new Set<string>();
    const precompiled = await loadPrecompiled(used);
    vi.resetModules();
    vi.doMock('../src/render/precompiled.js', () => ({ precompiled }));
    const pipeline = await import('../src/pipeline.js');
    expect(pipeline.renderConfigFile(example)).toEqual(runtime);
    // ... and were the ones that rendered it, partials included.
    expect(used).toContain('server/pg_backup_all.sh.eta');
    expect(used).toContain('partials/header.sh.eta');
    expect(used).toContain('dev/pull-server-backups.sh.eta');
  });

  it('cover every template, each with the sha256 of its source', async () => {
    const precompiled = await loadPrecompiled(new Set());
    const templates = readdirSync(join(REPO_ROOT, 'templates'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.eta'))
      .map((f) => f.split('\\').join('/'));
    expect(Object.keys(precompiled).sort()).toEqual(templates.sort());
  });

  it('give way to the file when a template changed since the build', async () => {
    const precompiled = await loadPrecompiled(new Set());
    const header = precompiled['partials/header.sh.eta'];
    header.fn = () => 'stale precompiled header\n';
    vi.resetModules();
    vi.doMock('../src/render/precompiled.js', () => ({ precompiled }));
    const pipeline = await import('../src/pipeline.js');
    expect(pipeline.renderConfigFile(example)).not.toEqual(renderConfigFile(example)); // the stale one ran
    header.sha256 = 'changed';
    vi.resetModules();
    const again = await import('../src/pipeline.js');
    expect(again.renderConfigFile(example)).toEqual(renderConfigFile(example));
  });
});

// Skipped only outside CI when `npm run build` has not run; in CI a missing bundle fails here.
describe.skipIf(!existsSync(BUNDLE) && !process.env.CI)('the bundle (npm run build)', () => {
  it('builds the example config as the tsc output does, without compiling a template', () => {
    const want = tempDir('pgb-runtime-');
    const got = tempDir('pgb-bundle-');
    expect(spawnSync('node', [join(REPO_ROOT, 'dist', 'cli', 'main.js'), 'build', '-c', example, '-o', want], { env }).status).toBe(0);
    // Counts eta's compiles: new Function(varName, 'options', body).
    const hook = join(tempDir('pgb-hook-'), 'count-compiles.cjs');
    writeFileSync(hook, `const F = Function; let n = 0;
globalThis.Function = new Proxy(F, { construct(t, a) { if (a[1] === 'options') n++; return Reflect.construct(t, a); } });
process.on('exit', () => process.stderr.write('template compiles: ' + n + '\\n'));\n`);
    const r = spawnSync('node', ['-r', hook, BUNDLE, 'build', '-c', example, '-o', got], { env, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('template compiles: 0\n');
    expect(tree(got)).toEqual(tree(want));
    expect(tree(got)).toEqual(tree(join(REPO_ROOT, 'generated')));
  });

  it('renders an edited template, not the one compiled at build time', () => {
    const root = tempDir('pgb-edited-');
    mkdirSync(join(root, 'dist', 'cli'), { recursive: true });
    cpSync(BUNDLE, join(root, 'dist', 'cli', 'pgb-gen.cjs'));
    cpSync(join(REPO_ROOT, 'templates'), join(root, 'templates'), { recursive: true });
    cpSync(join(REPO_ROOT, 'package.json'), join(root, 'package.json'));
    const header = join(root, 'templates', 'partials', 'header.sh.eta');
    writeFileSync(header, `# edited after the build\n${readFileSync(header, 'utf8')}`);
    const out = join(root, 'out');
    expect(spawnSync('node', [join(root, 'dist', 'cli', 'pgb-gen.cjs'), 'build', '-c', example, '-o', out], { env }).status).toBe(0);
    expect(readFileSync(join(out, 'main-server', 'root', 'usr', 'local', 'sbin', 'pg_backup_all.sh'), 'utf8')).toContain('# edited after the build\n');
  });

  it('runs from bin/ with a code cache that does not match it (ignored or rejected)', () => {
    const root = join(tempDir('pgb-cache-'), 'pkg');
    mkdirSync(join(root, 'dist', 'cli'), { recursive: true });
    cpSync(join(REPO_ROOT, 'bin'), join(root, 'bin'), { recursive: true });
    for (const f of readdirSync(join(REPO_ROOT, 'dist', 'cli'))) cpSync(join(REPO_ROOT, 'dist', 'cli', f), join(root, 'dist', 'cli', f), { preserveTimestamps: true });
    cpSync(join(REPO_ROOT, 'templates'), join(root, 'templates'), { recursive: true });
    cpSync(join(REPO_ROOT, 'package.json'), join(root, 'package.json'));
    const bundle = join(root, 'dist', 'cli', 'pgb-gen.cjs');
    const st = statSync(bundle);
    const run = () => {
      const out = tempDir('pgb-cache-out-');
      const r = spawnSync(join(root, 'bin', 'pgb-gen.cjs'), ['build', '-c', example, '-o', out], { env, encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(tree(out)).toEqual(tree(join(REPO_ROOT, 'generated')));
    };
    // Another bundle's cache (its first line names another size), then garbage V8 must reject.
    writeFileSync(`${bundle}.cache`, `1 2\n${'x'.repeat(1000)}`);
    run();
    writeFileSync(`${bundle}.cache`, `${st.size} ${st.mtimeMs}\n${'x'.repeat(1000)}`);
    run();
  });
});
