import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { sha256Hex } from '../commands/stableHash.js';

/**
 * Idempotency-Key handling for money-moving POSTs (Stripe's model): the first request with a key runs
 * and its response (status + body) is kept; the same key with the same request replays that response;
 * with a different request it is rejected; while the first is still running, a second one is told so.
 *
 * This store is the first line only. The command's own idempotency key (derived from tenant + caller +
 * header) makes the event ids deterministic, so even if this store loses a record (Redis flushed, TTL
 * passed), a retried command appends nothing new.
 */
export interface StoredResponse {
  statusCode: number;
  /** The serialized body exactly as sent. */
  body: string;
  contentType: string;
}

export type BeginResult =
  /** The caller owns the key now; it must call complete() or release() with this token. */
  | { kind: 'acquired'; token: string }
  | { kind: 'in_flight'; fingerprint: string }
  | { kind: 'completed'; fingerprint: string; response: StoredResponse };

export interface IdempotencyStore {
  readonly kind: 'redis' | 'postgres';
  /**
   * Atomically claims `scope` for a request with `fingerprint`, or reports what is there. An in-flight
   * claim older than lockTtlMs is considered abandoned (its process died) and may be taken over.
   */
  begin(scope: string, fingerprint: string, options: { lockTtlMs: number }): Promise<BeginResult>;
  /** Stores the final response for retentionMs; a no-op if the claim was lost (token mismatch). */
  complete(
    scope: string,
    token: string,
    response: StoredResponse,
    options: { retentionMs: number },
  ): Promise<void>;
  /** Drops the claim so the request can be retried (used when the outcome is not final: 5xx, conflicts). */
  release(scope: string, token: string): Promise<void>;
  ping(): Promise<void>;
}

/** At least 24 h: a client may retry a request for a day, as with Stripe's idempotency keys. */
export const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Longer than any request may run (command retries and Stripe calls are bounded well below this). */
export const DEFAULT_LOCK_TTL_MS = 60_000;

/**
 * Scope of a key: keys are private to one caller of one tenant. Tenant ids and subjects cannot contain
 * '/', and the key comes last, so the scope is unambiguous.
 */
export function idempotencyScope(tenantId: string, sub: string, key: string): string {
  return `${tenantId}/${sub}/${key}`;
}

/** Fingerprint of a request: method, route and canonical JSON body (key order does not matter). */
export function requestFingerprint(method: string, url: string, body: unknown): string {
  return sha256Hex(`${method} ${url}\n${canonicalJson(body)}`);
}

/**
 * Fingerprints are stored for 24 h, so this text must never change for a given body: objects with sorted
 * keys and undefined members dropped, array holes and unserializable members as '' (what the
 * `value.map(canonicalJson).join(',')` it replaced produced); test/api/requestFingerprint.unit.test.ts compares
 * with that version. Bodies are JSON.parse output, so reading members after sorting the keys (rather than
 * before) cannot be observed.
 */
export function canonicalJson(value: unknown): string {
  if (value === undefined || value === null) return 'null';
  if (typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) {
    let text = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) text += ',';
      if (i in value) text += (canonicalJson(value[i]) as string | undefined) ?? '';
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

// ---------------------------------------------------------------------------------------------------
// Postgres (the embedded default, and whenever Redis is not configured). Table from migration 0030.

const TABLE = 'api_idempotency_keys';
const PRUNE_EVERY_BEGINS = 500;
const PRUNE_BATCH = 500;

interface Row {
  fingerprint: string;
  state: 'in_flight' | 'completed';
  token: string;
  response_status: number | null;
  response_body: string | null;
  response_content_type: string | null;
}

export class PostgresIdempotencyStore implements IdempotencyStore {
  readonly kind = 'postgres' as const;
  private begins = 0;

  constructor(private readonly knex: Knex) {}

  async begin(scope: string, fingerprint: string, options: { lockTtlMs: number }): Promise<BeginResult> {
    if (++this.begins % PRUNE_EVERY_BEGINS === 0) await this.prune(PRUNE_BATCH);
    const token = randomUUID();
    // One statement decides: insert a new claim, or take over an expired record / abandoned claim.
    const claimed = await this.knex.raw<{ rows: Array<{ token: string }> }>(
      `INSERT INTO ${TABLE} (scope, fingerprint, state, token, locked_until, expires_at)
       VALUES (?, ?, 'in_flight', ?, now() + (?::float8 * interval '1 millisecond'), now() + (?::float8 * interval '1 millisecond'))
       ON CONFLICT (scope) DO UPDATE
         SET fingerprint = EXCLUDED.fingerprint, state = 'in_flight', token = EXCLUDED.token,
             locked_until = EXCLUDED.locked_until, expires_at = EXCLUDED.expires_at,
             response_status = NULL, response_body = NULL, response_content_type = NULL
         WHERE ${TABLE}.expires_at < now()
            OR (${TABLE}.state = 'in_flight' AND ${TABLE}.locked_until < now())
       RETURNING token`,
      [scope, fingerprint, token, options.lockTtlMs, options.lockTtlMs],
    );
    if (claimed.rows[0]?.token === token) return { kind: 'acquired', token };
    const row = (await this.knex(TABLE)
      .select('fingerprint', 'state', 'token', 'response_status', 'response_body', 'response_content_type')
      .where({ scope })
      .first()) as Row | undefined;
    // Deleted between the two statements (pruned): a fresh attempt will claim it.
    if (!row) return this.begin(scope, fingerprint, options);
    if (row.state === 'in_flight') return { kind: 'in_flight', fingerprint: row.fingerprint };
    return {
      kind: 'completed',
      fingerprint: row.fingerprint,
      response: {
        statusCode: row.response_status!,
        body: row.response_body!,
        contentType: row.response_content_type!,
      },
    };
  }

  async complete(
    scope: string,
    token: string,
    response: StoredResponse,
    options: { retentionMs: number },
  ): Promise<void> {
    await this.knex.raw(
      `UPDATE ${TABLE} SET state = 'completed', response_status = ?, response_body = ?,
         response_content_type = ?, expires_at = now() + (?::float8 * interval '1 millisecond')
       WHERE scope = ? AND token = ?`,
      [response.statusCode, response.body, response.contentType, options.retentionMs, scope, token],
    );
  }

  async release(scope: string, token: string): Promise<void> {
    await this.knex(TABLE).where({ scope, token, state: 'in_flight' }).delete();
  }

  async ping(): Promise<void> {
    await this.knex.raw('select 1');
  }

  /** Deletes up to `limit` expired records; bounded so it never holds the (PGlite) database for long. */
  async prune(limit: number): Promise<number> {
    const result = await this.knex.raw<{ rowCount?: number; affectedRows?: number }>(
      `DELETE FROM ${TABLE} WHERE scope IN (SELECT scope FROM ${TABLE} WHERE expires_at < now() LIMIT ?)`,
      [limit],
    );
    return result.rowCount ?? result.affectedRows ?? 0;
  }
}
