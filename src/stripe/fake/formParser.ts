/**
 * Parses Stripe-style form-encoded parameters (`application/x-www-form-urlencoded` bodies and query
 * strings) into nested objects: `metadata[topUpId]=t1` -> { metadata: { topUpId: 't1' } },
 * `expand[]=a&expand[]=b` and `expand[0]=a` -> { expand: ['a', 'b'] }, `created[gte]=5` -> nested.
 * Bounded: at most MAX_PARAMS pairs and MAX_DEPTH nesting levels, so a hostile body cannot blow up.
 */
export type FormValue = string | FormValue[] | { [key: string]: FormValue };
export type FormObject = { [key: string]: FormValue };

export const MAX_PARAMS = 1_000;
export const MAX_DEPTH = 5;

export class FormParseError extends Error {
  constructor(
    message: string,
    readonly param: string,
  ) {
    super(message);
    this.name = 'FormParseError';
  }
}

function decode(text: string): string {
  return decodeURIComponent(text.replace(/\+/g, ' '));
}

/** Splits `a[b][c]` into ['a', 'b', 'c']; `a[]` gives ['a', '']. */
function keyPath(rawKey: string): string[] {
  const open = rawKey.indexOf('[');
  if (open === -1) return [rawKey];
  const parts = [rawKey.slice(0, open)];
  let rest = rawKey.slice(open);
  while (rest.length > 0) {
    const match = /^\[([^\]]*)\]/.exec(rest);
    if (!match) throw new FormParseError(`malformed parameter name ${rawKey}`, rawKey);
    parts.push(match[1] ?? '');
    rest = rest.slice(match[0].length);
  }
  return parts;
}

export function parseForm(input: string): FormObject {
  const root: FormObject = {};
  if (input.length === 0) return root;
  const pairs = input.split('&');
  if (pairs.length > MAX_PARAMS) throw new FormParseError(`more than ${MAX_PARAMS} parameters`, '');
  for (const pair of pairs) {
    if (pair.length === 0) continue;
    const eq = pair.indexOf('=');
    const rawKey = decode(eq === -1 ? pair : pair.slice(0, eq));
    const value = eq === -1 ? '' : decode(pair.slice(eq + 1));
    const path = keyPath(rawKey);
    if (path.length > MAX_DEPTH + 1) throw new FormParseError(`parameter ${rawKey} nests too deep`, rawKey);
    assign(root, path, value, rawKey);
  }
  return normaliseArrays(root) as FormObject;
}

// Containers are built as objects first; objects whose keys are all '' pushes or dense indexes become
// arrays at the end (`a[0]=x&a[1]=y` and `a[]=x&a[]=y` mean the same list).
const PUSH = '\u0000push';

function assign(target: { [key: string]: FormValue }, path: string[], value: string, rawKey: string): void {
  let node: { [key: string]: FormValue } = target;
  for (let i = 0; i < path.length; i++) {
    let segment = path[i] ?? '';
    if (segment === '' && i > 0) segment = `${PUSH}${Object.keys(node).length}`;
    if (segment === '__proto__' || segment === 'constructor' || segment === 'prototype') {
      throw new FormParseError(`forbidden parameter name ${rawKey}`, rawKey);
    }
    if (i === path.length - 1) {
      if (typeof node[segment] === 'object') {
        throw new FormParseError(`parameter ${rawKey} is both a value and a hash`, rawKey);
      }
      node[segment] = value;
      return;
    }
    const existing = node[segment];
    if (existing === undefined) {
      const child: { [key: string]: FormValue } = {};
      node[segment] = child;
      node = child;
    } else if (typeof existing === 'object' && !Array.isArray(existing)) {
      node = existing;
    } else {
      throw new FormParseError(`parameter ${rawKey} is both a value and a hash`, rawKey);
    }
  }
}

function normaliseArrays(value: FormValue): FormValue {
  if (typeof value === 'string' || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  for (const key of keys) value[key] = normaliseArrays(value[key] as FormValue);
  if (keys.length === 0) return value;
  const allPush = keys.every((k) => k.startsWith(PUSH));
  const allIndexes = keys.every((k, i) => k === String(i));
  if (allPush || allIndexes) return keys.map((k) => value[k] as FormValue);
  if (keys.some((k) => k.startsWith(PUSH))) {
    throw new FormParseError('mixed list and hash parameters', keys.join(','));
  }
  return value;
}
