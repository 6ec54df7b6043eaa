// Shell quoting: the one escape every interpolation in a shell template goes through.

/** Single-quote a value for bash: `it's` -> `'it'\''s'`. Safe for any string, newlines included. */
export function shq(value: unknown): string {
  return `'${String(value).replace(/'/g, `'\\''`)}'`;
}

/** A bash array literal: ('a' 'b'). */
export function shArray(values: readonly unknown[]): string {
  return `(${values.map(shq).join(' ')})`;
}
