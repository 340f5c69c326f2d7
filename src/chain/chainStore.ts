import type { Knex } from 'knex';
import type { Database } from '../db/database.js';
import { InvariantViolation } from '../domain/errors.js';
import { type ChainHead, HASH_PATTERN } from './link.js';

/**
 * The chain tables (migrations/20261204060000_event_chain.ts) on Postgres/PGlite: they live in the SQL
 * database every deployment has, whichever event store holds the events (as the snapshots do).
 */

/** One stored link: the event at `position` is its tenant's `seq`-th, and `hash` chains it. */
export interface ChainLink {
  position: bigint;
  tenantId: string;
  seq: bigint;
  eventId: string;
  streamName: string;
  hash: string;
}

/** A tenant's newest link, with when it was chained. */
export interface StoredChainHead extends ChainHead {
  position: bigint;
  eventId: string;
  chainedAt: Date;
}

/** Another chainer moved the checkpoint since this one read it: the batch was not written. */
export class ChainCheckpointMovedError extends Error {
  constructor(
    readonly expected: bigint,
    readonly actual: bigint,
  ) {
    super(`event chain checkpoint is at ${actual}, expected ${expected} (another chainer wrote)`);
    this.name = 'ChainCheckpointMovedError';
  }
}

/** The work of one batch, inside its transaction: the tenants' heads before it, then what to write. */
export interface ChainBatchWork {
  /** Heads of these tenants as committed (locked with the checkpoint); tenants without a link are absent. */
  heads(tenantIds: readonly string[]): Promise<Map<string, ChainHead>>;
}

interface LinkRow {
  position: string | number;
  tenant_id: string;
  seq: string | number;
  event_id: string;
  stream_name: string;
  hash: string;
}

interface HeadRow {
  tenant_id: string;
  seq: string | number;
  position: string | number;
  event_id: string;
  hash: string;
  chained_at: Date | string;
}

/** Most links or heads one read returns. */
export const MAX_CHAIN_PAGE = 10_000;

export class ChainStore {
  constructor(private readonly db: Database) {}

  /** Last global position chained (-1n: nothing yet). */
  async checkpoint(): Promise<bigint> {
    return readCheckpoint(this.db.knex);
  }

  /**
   * Writes one batch of links in one transaction with the checkpoint: locks the checkpoint row, checks it
   * is still `expected`, asks `plan` for the links (given the locked heads), inserts them, moves the
   * heads and the checkpoint to `through`. Throws ChainCheckpointMovedError (nothing written) when
   * another chainer moved the checkpoint.
   */
  async commit(
    expected: bigint,
    through: bigint,
    plan: (work: ChainBatchWork) => Promise<ChainLink[]>,
  ): Promise<void> {
    await this.db.knex.transaction(async (trx) => {
      // No wait for the WAL flush: the links are a function of events already durable, and the
      // checkpoint commits with them, so a crash that loses this commit loses both together and the
      // chainer links the same events again, to the same hashes. It keeps the chainer's commits from
      // queueing behind the appends' flushes (docs/benchmarks.md, "Tamper-evident log").
      await trx.raw('SET LOCAL synchronous_commit TO off');
      const current = await readCheckpoint(trx, true);
      if (current !== expected) throw new ChainCheckpointMovedError(expected, current);
      if (through <= expected) {
        throw new InvariantViolation(
          `chain: batch through ${through} does not follow checkpoint ${expected}`,
        );
      }
      const links = await plan({ heads: (tenantIds) => readHeads(trx, tenantIds) });
      for (const link of links) {
        if (link.position <= expected || link.position > through || !HASH_PATTERN.test(link.hash)) {
          throw new InvariantViolation(`chain: link at ${link.position} outside ${expected}..${through}`);
        }
      }
      if (links.length > 0) {
        const rows = links.map((l) => ({
          position: l.position.toString(),
          tenant_id: l.tenantId,
          seq: l.seq.toString(),
          event_id: l.eventId,
          stream_name: l.streamName,
          hash: l.hash,
        }));
        await trx.raw(
          `INSERT INTO event_chain (position, tenant_id, seq, event_id, stream_name, hash)
           SELECT x.position, x.tenant_id, x.seq, x.event_id, x.stream_name, x.hash
           FROM jsonb_to_recordset(?::jsonb)
             AS x(position bigint, tenant_id text, seq bigint, event_id uuid, stream_name text, hash text)`,
          [JSON.stringify(rows)],
        );
        // The newest link per tenant of the batch becomes its head.
        const newest = new Map<string, (typeof rows)[number]>();
        for (const row of rows) newest.set(row.tenant_id, row);
        await trx.raw(
          `INSERT INTO event_chain_heads (tenant_id, seq, position, event_id, hash, chained_at)
           SELECT x.tenant_id, x.seq, x.position, x.event_id, x.hash, now()
           FROM jsonb_to_recordset(?::jsonb)
             AS x(position bigint, tenant_id text, seq bigint, event_id uuid, hash text)
           ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, position = excluded.position,
             event_id = excluded.event_id, hash = excluded.hash, chained_at = excluded.chained_at`,
          [JSON.stringify([...newest.values()])],
        );
      }
      await trx.raw('UPDATE event_chain_checkpoint SET position = ?, updated_at = now() WHERE id = 1', [
        through.toString(),
      ]);
    });
  }

  /** The tenant's newest link, or undefined when none of its events is chained yet. */
  async head(tenantId: string): Promise<StoredChainHead | undefined> {
    const rows = (await this.db.knex('event_chain_heads').where({ tenant_id: tenantId })) as HeadRow[];
    return rows[0] ? toHead(rows[0]) : undefined;
  }

  /** The tenant's newest link at or before `position` (what a ledger pinned to that position was chained to). */
  async headAt(tenantId: string, position: bigint): Promise<StoredChainHead | undefined> {
    const result = await this.db.knex.raw<{ rows: Array<LinkRow & { chained_at: Date | string }> }>(
      `SELECT position, tenant_id, seq, event_id, stream_name, hash, chained_at FROM event_chain
       WHERE tenant_id = ? AND position <= ? ORDER BY tenant_id DESC, position DESC LIMIT 1`,
      [tenantId, position.toString()],
    );
    const row = result.rows[0];
    return row ? toHead(row) : undefined;
  }

  /** Heads of every tenant, in tenant order, after `afterTenant` (paged; at most `limit`). */
  async heads(options: { afterTenant?: string; limit: number }): Promise<StoredChainHead[]> {
    const limit = boundedLimit(options.limit);
    let query = this.db.knex('event_chain_heads').orderBy('tenant_id').limit(limit);
    if (options.afterTenant !== undefined) query = query.where('tenant_id', '>', options.afterTenant);
    return ((await query) as HeadRow[]).map(toHead);
  }

  /** Links in global order with position > `after` (at most `limit`). */
  async links(options: { after: bigint; limit: number }): Promise<ChainLink[]> {
    const result = await this.db.knex.raw<{ rows: LinkRow[] }>(
      `SELECT position, tenant_id, seq, event_id, stream_name, hash FROM event_chain
       WHERE position > ? ORDER BY position LIMIT ?`,
      [options.after.toString(), boundedLimit(options.limit)],
    );
    return result.rows.map(toLink);
  }

  /** The link of the tenant's `seq`-th event. */
  async linkAt(tenantId: string, seq: bigint): Promise<ChainLink | undefined> {
    const rows = (await this.db
      .knex('event_chain')
      .where({ tenant_id: tenantId, seq: seq.toString() })
      .select('position', 'tenant_id', 'seq', 'event_id', 'stream_name', 'hash')) as LinkRow[];
    return rows[0] ? toLink(rows[0]) : undefined;
  }
}

function boundedLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_CHAIN_PAGE) {
    throw new RangeError(`chain: limit must be an integer in 1..${MAX_CHAIN_PAGE}`);
  }
  return limit;
}

async function readCheckpoint(knex: Knex | Knex.Transaction, lock = false): Promise<bigint> {
  const result = await knex.raw<{ rows: Array<{ position: string | number }> }>(
    `SELECT position FROM event_chain_checkpoint WHERE id = 1${lock ? ' FOR UPDATE' : ''}`,
  );
  const row = result.rows[0];
  if (!row) throw new Error('event_chain_checkpoint row is missing; run the migrations');
  return BigInt(row.position);
}

async function readHeads(
  trx: Knex.Transaction,
  tenantIds: readonly string[],
): Promise<Map<string, ChainHead>> {
  const out = new Map<string, ChainHead>();
  if (tenantIds.length === 0) return out;
  const rows = (await trx('event_chain_heads').whereIn('tenant_id', [...tenantIds])) as HeadRow[];
  for (const row of rows) out.set(row.tenant_id, toHead(row));
  return out;
}

function toLink(row: LinkRow): ChainLink {
  return {
    position: BigInt(row.position),
    tenantId: row.tenant_id,
    seq: BigInt(row.seq),
    eventId: row.event_id,
    streamName: row.stream_name,
    hash: row.hash,
  };
}

function toHead(row: Omit<HeadRow, 'event_id'> & { event_id: string }): StoredChainHead {
  return {
    tenantId: row.tenant_id,
    seq: BigInt(row.seq),
    position: BigInt(row.position),
    eventId: row.event_id,
    hash: row.hash,
    chainedAt: row.chained_at instanceof Date ? row.chained_at : new Date(row.chained_at),
  };
}
