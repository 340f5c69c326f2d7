import * as nodeCrypto from 'node:crypto';

/**
 * SHA-256 of a canonical JSON form (object keys sorted, undefined dropped, Dates as ISO strings, bigints
 * as decimal strings). Two commands hash equal exactly when they carry the same values.
 */
export function stableHash(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}

/** Node >= 20.12 hashes in one call without a Hash object (half the cost for a small text). */
const oneShotHash = (nodeCrypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string })
  .hash;
export const sha256Hex = (text: string): string =>
  oneShotHash
    ? oneShotHash('sha256', text, 'hex')
    : nodeCrypto.createHash('sha256').update(text).digest('hex');

/**
 * Command hashes are stored in event metadata and compared on every retry, so this text must never
 * change for a given value: array holes as '' (what the `value.map(canonicalJson).join(',')` it replaced
 * produced); test/commands/stableHash.property.unit.test.ts compares with that version.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  switch (typeof value) {
    case 'bigint':
      return JSON.stringify(value.toString());
    case 'number':
    case 'boolean':
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) {
        let text = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) text += ',';
          if (i in value) text += canonicalJson(value[i]);
        }
        return `${text}]`;
      }
      const keys = Object.keys(value);
      if (keys.length > 1) keys.sort();
      let text = '{';
      for (const key of keys) {
        const member: unknown = (value as Record<string, unknown>)[key];
        if (member === undefined) continue;
        text += `${text.length > 1 ? ',' : ''}${JSON.stringify(key)}:${canonicalJson(member)}`;
      }
      return `${text}}`;
    }
    default:
      throw new TypeError(`cannot hash a ${typeof value}`);
  }
}
