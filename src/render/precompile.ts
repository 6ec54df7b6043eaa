// Build time (scripts/bundle.mjs): every template under templates/ compiled to a JS function, as
// the source of a module that stands in for precompiled.ts in the bundle. The functions are eta's
// own compileToString output, so they render exactly what eta compiles at run time.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Eta } from 'eta';
import { etaForPrecompile, sha256, TEMPLATE_DIR } from './render.js';

// Helpers eta declares at the top of every template function (layouts, blocks, async includes);
// block* call capture*, so they come first.
const HELPERS = ['blockAsync', 'block', 'captureAsync', 'capture', 'layout', 'output', 'includeAsync'];

/** eta's function source without the helper declarations nothing in it names: less code to load. */
function withoutUnusedHelpers(eta: Eta, src: string): string {
  const fn = eta.compileToString(src);
  const body = eta.compileBody(eta.parse(src));
  const at = fn.indexOf(body);
  if (!body || at < 0) return fn;
  let head = fn.slice(0, at);
  const rest = fn.slice(at);
  for (const name of HELPERS) {
    const lines = head.split('\n');
    const start = lines.findIndex((l) => l.startsWith(`function ${name}(`) || l.startsWith(`async function ${name}(`) || l.startsWith(`let ${name} = `));
    if (start < 0) continue;
    let end = start;
    let depth = 0;
    for (; end < lines.length; end++) {
      depth += (lines[end].match(/\{/g) ?? []).length - (lines[end].match(/\}/g) ?? []).length;
      if (depth <= 0) break;
    }
    const others = [...lines.slice(0, start), ...lines.slice(end + 1)].join('\n');
    if (!new RegExp(`(?<![\\w$.])${name}(?![\\w$])`).test(others + rest)) head = others;
  }
  return head + rest;
}

export function precompiledModule(dir: string = TEMPLATE_DIR): string {
  const eta = etaForPrecompile();
  const entries = readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.eta'))
    .map((f) => f.split('\\').join('/'))
    .sort()
    .map((file) => {
      const src = readFileSync(join(dir, file), 'utf8');
      const body = withoutUnusedHelpers(eta, src);
      return `${JSON.stringify(file)}: { sha256: ${JSON.stringify(sha256(src))}, fn: function (${eta.config.varName}, options) {\n${body}\n} }`;
    });
  return `export const precompiled = {\n${entries.join(',\n')}\n};\n`;
}
