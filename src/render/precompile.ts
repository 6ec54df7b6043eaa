// Build time (scripts/bundle.mjs): every template under templates/ compiled to a JS function, as
// the source of a module that stands in for precompiled.ts in the bundle. The functions are eta's
// own compileToString output, so they render exactly what eta compiles at run time.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { etaForPrecompile, sha256, TEMPLATE_DIR } from './render.js';

export function precompiledModule(dir: string = TEMPLATE_DIR): string {
  const eta = etaForPrecompile();
  const entries = readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.eta'))
    .map((f) => f.split('\\').join('/'))
    .sort()
    .map((file) => {
      const src = readFileSync(join(dir, file), 'utf8');
      const body = eta.compileToString(src);
      return `${JSON.stringify(file)}: { sha256: ${JSON.stringify(sha256(src))}, fn: function (${eta.config.varName}, options) {\n${body}\n} }`;
    });
  return `export const precompiled = {\n${entries.join(',\n')}\n};\n`;
}
