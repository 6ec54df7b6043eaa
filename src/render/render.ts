// Eta set-up. Shell templates escape every plain interpolation with shell quoting;
// other templates (units, sudoers, markdown) print schema-validated values as they are.
import { Eta, type TemplateFunction } from 'eta';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { shArray, shq } from './shell.js';
import { precompiled } from './precompiled.js';

export const TEMPLATE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'templates');

const common = { views: TEMPLATE_DIR, autoEscape: true, autoTrim: false as const, cache: true, useWith: false };
const shellEta = new Eta({ ...common, escapeFunction: shq });
const textEta = new Eta({ ...common, escapeFunction: (v: unknown) => String(v) });

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** An Eta with the templates' compile options, for precompile.ts (escaping is looked up at render time). */
export const etaForPrecompile = () => new Eta(common);

// In the bundle: eta still reads each template (and its includes) from templates/, but takes the
// function compiled at build time instead of compiling it, as long as the file is unchanged.
if (precompiled) {
  const byPath = new Map(Object.entries(precompiled).map(([file, p]) => [join(TEMPLATE_DIR, file), p]));
  for (const eta of [shellEta, textEta]) {
    const compile = eta.compile;
    eta.compile = function (src, options): TemplateFunction {
      const p = options?.filepath === undefined ? undefined : byPath.get(options.filepath);
      return p && p.sha256 === sha256(src) ? p.fn : compile.call(this, src, options);
    };
  }
}

// eta resolves a template's path (join, then a relative() check that it stays in templates/) on
// every render and include; the answer only depends on the name and the including file.
for (const eta of [shellEta, textEta]) {
  const resolvePath = eta.resolvePath!;
  const resolved = new Map<string, string>();
  eta.resolvePath = function (name, options) {
    const key = `${options?.filepath ?? ''}\0${name}`;
    let path = resolved.get(key);
    if (path === undefined) resolved.set(key, (path = resolvePath.call(this, name, options)));
    return path;
  };
}

/** Helpers every template may call as `it.h.*`; their output is already escaped. */
export const helpers = { shq, shArray };

export function renderTemplate(template: string, view: object): string {
  const eta = template.endsWith('.sh') ? shellEta : textEta;
  const out = eta.render(`./${template}.eta`, { ...view, h: helpers });
  return out.endsWith('\n') ? out : out + '\n';
}

/** Renders a template string with the shell escaping (for tests of the quoting itself). */
export function renderShellString(template: string, view: object): string {
  return shellEta.renderString(template, { ...view, h: helpers });
}
