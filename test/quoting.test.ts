import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { renderShellString } from '../src/render/render.js';
import { shArray, shq } from '../src/render/shell.js';

const hostile = [
  "it's", '"double"', '$(touch /tmp/pwned)', '`id`', '*', '?', '[a-z]', '~root', '-rf', '--help',
  'a b  c', 'line1\nline2', '\ttab', '$HOME', '${PATH}', '\\', "'", "''", '!', 'a;b', 'a|b', 'a&b', '>x', '<y', '#c', '',
];

function bashEcho(script: string): string {
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  return r.stdout;
}

describe('shell quoting', () => {
  it('round-trips hostile strings through real bash unchanged', () => {
    for (const s of hostile) expect(bashEcho(`printf '%s' ${shq(s)}`)).toBe(s);
  });

  it('round-trips a hostile array element by element', () => {
    const out = bashEcho(`arr=${shArray(hostile)}; printf '%s\\0' "\${arr[@]}"`);
    expect(out.split('\0').slice(0, -1)).toEqual(hostile);
  });

  it('is what a plain interpolation in a shell template does', () => {
    for (const s of hostile) {
      const script = renderShellString("readonly V=<%= it.v %>\nprintf '%s' \"${V}\"", { v: s });
      expect(bashEcho(script)).toBe(s);
    }
  });
});
