// The config loader parses with js-yaml (fast) and falls back to yaml (positions for errors)
// only when that fails or the config is invalid: both must read every text to the same value,
// or a config would mean one thing when valid and another when its errors are reported.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { YAML12_CORE } from '../src/config/load.js';
import { parseDocument, stringify } from 'yaml';
import { REPO_ROOT } from './helpers.js';

// Compared as JSON: the one difference left, -0 read as 0 by js-yaml, renders the same ("0").
const json = (v: unknown) => JSON.parse(JSON.stringify(v ?? null));
/** js-yaml's reading; undefined when it throws (the loader then leaves the text to yaml alone). */
const viaJsYaml = (text: string) => {
  try {
    return json(load(text, { schema: YAML12_CORE }));
  } catch {
    return undefined;
  }
};
/** What the loader would use: js-yaml's value when it has one must be yaml's. */
const agree = (text: string) => {
  const fast = viaJsYaml(text);
  if (fast !== undefined) expect({ text, value: fast }).toEqual({ text, value: viaYaml(text) });
  return fast !== undefined;
};
/** yaml's reading as the loader does it, or an error marker when yaml reports an error. */
const viaYaml = (text: string) => {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  return doc.errors.length ? 'yaml error' : json(doc.toJS());
};

describe('js-yaml (fast path) and yaml (error path) read configs alike', () => {
  it('on the example config and the annotated init config', () => {
    for (const f of ['pgb.config.yaml', 'templates/init/pgb.config.yaml']) {
      expect(agree(readFileSync(join(REPO_ROOT, f), 'utf8'))).toBe(true);
    }
  });

  it('on plain scalars that YAML 1.1 and 1.2 read differently', () => {
    const scalars = ['02:00', '1:30', 'on', 'off', 'yes', 'no', 'y', 'n', 'True', 'FALSE', '~', 'null', 'Null', '',
      '0o17', '017', '0x1F', '0b101', '1_000', '+12', '-0', '1e3', '1.5e+3', '.5', '5.', '.inf', '-.Inf', '.NaN',
      '2026-01-31', '2026-01-31 13:45:00+00', 'Sun 04:30', 'Mon..Fri 01:30', '=', '<<', '!', '12:34:56.7'];
    // Most of them reach the comparison (js-yaml refuses only a few, e.g. a bare `!` in a flow list).
    const compared = scalars.filter((s) => agree(`a: ${s}\nb: [${s}]\n`));
    expect(compared.length).toBeGreaterThan(scalars.length - 3);
  });

  it('on anchors, aliases, block and flow styles, quoting, comments', () => {
    const text = [
      'base: &b { port: 5432, host: "db.example.org" }',
      'copy: *b',
      "single: 'it''s'",
      'double: "tab\\tnew\\nline \\u00e9"',
      'folded: >',
      '  one',
      '  two',
      'literal: |-',
      '  keep',
      '   indent',
      'list:',
      '  - { name: a, port: 1 }  # comment',
      '  - name: b',
      '    port: 2',
      'empty_map: {}',
      'empty_list: []',
      '',
    ].join('\n');
    expect(agree(text)).toBe(true);
  });

  it('on any JSON-like value yaml writes', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), (value) => {
        expect(agree(stringify({ v: value }))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
