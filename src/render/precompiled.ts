// The templates as compiled functions, keyed by their path under templates/. scripts/bundle.mjs
// replaces this module in dist/cli/pgb-gen.cjs with the output of precompile.ts, so the bundle
// does not compile templates at run time; here (tsc output, vitest) there are none.
import type { TemplateFunction } from 'eta';

export type Precompiled = Record<string, { sha256: string; fn: TemplateFunction }>;

export const precompiled: Precompiled | undefined = undefined;
