// Eta set-up. Shell templates escape every plain interpolation with shell quoting;
// other templates (units, sudoers, markdown) print schema-validated values as they are.
import { Eta } from 'eta';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { shArray, shq } from './shell.js';

export const TEMPLATE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'templates');

const common = { views: TEMPLATE_DIR, autoEscape: true, autoTrim: false as const, cache: true, useWith: false };
const shellEta = new Eta({ ...common, escapeFunction: shq });
const textEta = new Eta({ ...common, escapeFunction: (v: unknown) => String(v) });

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
