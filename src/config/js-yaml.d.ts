// js-yaml 4 exports its built-in types (js-yaml's README: "types"), which @types/js-yaml omits.
import type { Type } from 'js-yaml';

declare module 'js-yaml' {
  export const types: Record<'null' | 'bool' | 'int' | 'float', Type>;
}
