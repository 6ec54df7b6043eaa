// Loads a YAML/JSON config and validates it, turning every problem into one
// `file:line:col path: expected ..., found ...` line (all problems at once, sorted).
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isPair, isScalar, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';
import { configWarnings } from './warnings.js';

export interface ConfigProblem {
  file: string;
  line: number;
  col: number;
  path: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
  }
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.col} ${p.path || '(root)'}: ${p.message}`;
}

/** `servers[0].services[1].port` */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i ? '.' : ''}${String(k)}`)).join('');
}

function describeFound(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${String(value)}`;
}

function expected(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type': return `expected ${issue.expected}`;
    case 'too_small': return `expected ${issue.origin === 'array' ? `at least ${issue.minimum} item(s)` : `a value >= ${issue.minimum}`}`;
    case 'too_big': return `expected ${issue.origin === 'array' ? `at most ${issue.maximum} item(s)` : `a value <= ${issue.maximum}`}`;
    case 'invalid_value': return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'unrecognized_keys': return 'expected only known keys';
    default: return `expected ${issue.message}`;
  }
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let cur: any = data;
  for (const k of path) cur = cur == null ? undefined : cur[k as any];
  return cur;
}

/** Where a path points in the document: the value node, or the closest existing parent. */
function locate(doc: Document, lc: LineCounter, path: readonly PropertyKey[], key?: string): { line: number; col: number } {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as any[], true) as Node | undefined;
    if (!node || !node.range) continue;
    if (key !== undefined && n === path.length && isMap(node)) {
      const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && it.key.value === key);
      const kn = pair && (pair.key as Node);
      if (kn?.range) return lc.linePos(kn.range[0]);
    }
    return lc.linePos(node.range[0]);
  }
  return { line: 1, col: 1 };
}

export function parseConfigText(text: string, file: string): Config {
  return lintConfigText(text, file).config;
}

/** The config and its warnings (see warnings.ts), each located like an error. */
export function lintConfigText(text: string, file: string): { config: Config; warnings: ConfigProblem[] } {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    throw new ConfigError(doc.errors.map((e) => {
      const pos = e.linePos?.[0] ?? { line: 1, col: 1 };
      return { file, line: pos.line, col: pos.col, path: '', message: `expected valid YAML, found ${e.message.split('\n')[0]}` };
    }));
  }
  const data = doc.toJS();
  const result = configSchema.safeParse(data);
  if (result.success) {
    const warnings = configWarnings(result.data).map((w) => ({ ...locate(doc, lc, w.path), file, path: formatPath(w.path), message: w.message }));
    warnings.sort((a, b) => a.line - b.line || a.col - b.col || a.path.localeCompare(b.path));
    return { config: result.data, warnings };
  }
  const problems: ConfigProblem[] = [];
  for (const issue of result.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const pos = locate(doc, lc, issue.path, key);
        problems.push({ ...pos, file, path: formatPath([...issue.path, key]), message: 'expected a known key, found unknown key ' + JSON.stringify(key) });
      }
      continue;
    }
    const pos = locate(doc, lc, issue.path);
    const found = valueAt(data, issue.path);
    const described = issue.code === 'custom' && (issue.params as { described?: boolean } | undefined)?.described;
    const message = described ? `expected ${issue.message}` : `${expected(issue)}, found ${describeFound(found)}`;
    problems.push({ ...pos, file, path: formatPath(issue.path), message });
  }
  problems.sort((a, b) => a.line - b.line || a.col - b.col || a.path.localeCompare(b.path));
  throw new ConfigError(problems);
}

export function loadConfig(file: string): Config {
  return lintConfig(file).config;
}

export function lintConfig(file: string): { config: Config; warnings: ConfigProblem[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([{ file, line: 0, col: 0, path: '', message: `expected a readable config file, found ${(e as NodeJS.ErrnoException).code ?? 'an error'}` }]);
  }
  return lintConfigText(text, file);
}
