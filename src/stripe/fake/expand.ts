import type { FakeObject } from './types.js';
import { FakeStripeError } from './types.js';

/**
 * Stripe's `expand[]`: each path names an expandable field holding an id (`latest_charge`), possibly
 * nested (`latest_charge.balance_transaction`) or inside a list (`data.source`); the id is replaced by
 * the object. A field that holds no expandable id is refused as Stripe refuses it. At most four levels.
 */
export function expand<T>(
  value: T,
  paths: readonly string[],
  lookup: (id: string) => FakeObject | undefined,
): T {
  if (paths.length === 0) return value;
  const out = structuredClone(value) as unknown;
  for (const path of paths) {
    const parts = path.split('.');
    if (parts.length > 4 || parts.some((p) => p.length === 0)) {
      throw cannotExpand(path);
    }
    expandAt(out, parts, path, lookup);
  }
  return out as T;
}

function expandAt(
  node: unknown,
  parts: readonly string[],
  path: string,
  lookup: (id: string) => FakeObject | undefined,
): void {
  if (node === null || typeof node !== 'object') throw cannotExpand(path);
  const record = node as Record<string, unknown>;
  const [head, ...rest] = parts as [string, ...string[]];
  if (head === 'data' && record.object === 'list' && Array.isArray(record.data)) {
    if (rest.length === 0) throw cannotExpand(path);
    for (const item of record.data) expandAt(item, rest, path, lookup);
    return;
  }
  if (!(head in record)) throw cannotExpand(path, head);
  let child = record[head];
  if (typeof child === 'string') {
    const found = lookup(child);
    if (!found) throw cannotExpand(path, head);
    child = structuredClone(found);
    record[head] = child;
  } else if (child === null) {
    return;
  } else if (rest.length === 0) {
    throw cannotExpand(path, head);
  }
  if (rest.length > 0) expandAt(child, rest, path, lookup);
}

function cannotExpand(path: string, field = path): FakeStripeError {
  return new FakeStripeError(
    400,
    {
      type: 'invalid_request_error',
      message: `This property cannot be expanded (${field}).`,
      param: 'expand',
    },
    false,
  );
}
