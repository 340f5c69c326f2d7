import fc from 'fast-check';
import type { Knex } from 'knex';
import { deterministicId } from '../../src/domain/ids.js';
import type { JournalEntry, Posting } from '../../src/domain/journal.js';
import type { EventStore, EventToAppend, JsonObject, RecordedEvent } from '../../src/eventstore/port.js';
import {
  applyPosting,
  availableOf,
  normalSideOf,
  type Totals,
  ZERO_TOTALS,
} from '../../src/projections/balances.js';
import { type ReadModelSchema, TENANT_TABLES } from '../../src/projections/schema.js';

/**
 * Random but always-valid money histories: balanced entries (posts, holds, and releases of earlier holds
 * with a partial capture) over a small pool of accounts in two tenants and two currencies, plus
 * events without money. Built from a list of abstract operations so fast-check can shrink them.
 */
export const TENANTS = ['ta', 'tb'] as const;
export const ACCOUNTS = [
  'student:s1:wallet',
  'student:s2:wallet',
  'tutor:t1:earnings:pending',
  'tutor:t1:earnings:available',
  'tutor:t1:receivable',
  'platform:revenue:commission',
  'stripe:balance',
  'clearing:booking:b1',
] as const;

export type Op =
  | { kind: 'post'; tenant: number; from: number; to: number; amount: number; currency: number }
  | { kind: 'hold'; tenant: number; from: number; to: number; amount: number; currency: number }
  | { kind: 'release'; hold: number; capturePercent: number }
  | { kind: 'note'; tenant: number };

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('post' as const),
    tenant: fc.nat(1),
    from: fc.nat(ACCOUNTS.length - 1),
    to: fc.nat(ACCOUNTS.length - 1),
    amount: fc.integer({ min: 1, max: 100_000 }),
    currency: fc.nat(1),
  }),
  fc.record({
    kind: fc.constant('hold' as const),
    tenant: fc.nat(1),
    from: fc.nat(ACCOUNTS.length - 1),
    to: fc.nat(ACCOUNTS.length - 1),
    amount: fc.integer({ min: 1, max: 100_000 }),
    currency: fc.nat(1),
  }),
  fc.record({
    kind: fc.constant('release' as const),
    hold: fc.nat(50),
    capturePercent: fc.integer({ min: 0, max: 100 }),
  }),
  fc.record({ kind: fc.constant('note' as const), tenant: fc.nat(1) }),
);

const CURRENCIES = ['usd', 'eur'] as const;
const BASE_TIME = Date.parse('2026-01-01T00:00:00.000Z');

export interface BuiltEvent {
  streamName: string;
  event: EventToAppend;
}

/** Turns operations into events; `seed` keeps ids distinct between histories in one database. */
export function buildEvents(ops: readonly Op[], seed = 'h'): BuiltEvent[] {
  const open: Array<{ tenant: string; postings: Posting[]; holdId: string }> = [];
  const out: BuiltEvent[] = [];
  ops.forEach((op, i) => {
    const id = deterministicId(seed, String(i));
    let tenant: string;
    let entry: JournalEntry | undefined;
    if (op.kind === 'note') {
      tenant = TENANTS[op.tenant]!;
    } else if (op.kind === 'release') {
      const hold = open.splice(op.hold % Math.max(open.length, 1), 1)[0];
      if (!hold) return;
      tenant = hold.tenant;
      const released = hold.postings.map((p): Posting => ({ ...p, effect: 'release' }));
      const amount = hold.postings[0]!.amount;
      const captured = Math.floor((amount * op.capturePercent) / 100);
      const posted =
        captured > 0 ? hold.postings.map((p): Posting => ({ ...p, amount: captured, effect: 'post' })) : [];
      entry = {
        entryId: id,
        holdId: hold.holdId,
        description: `release ${hold.holdId}`,
        postings: [...released, ...posted],
      };
    } else {
      tenant = TENANTS[op.tenant]!;
      const to = op.to === op.from ? (op.to + 1) % ACCOUNTS.length : op.to;
      const effect = op.kind === 'post' ? 'post' : 'hold';
      const currency = CURRENCIES[op.currency]!;
      const postings: Posting[] = [
        { account: ACCOUNTS[op.from]!, side: 'debit', effect, amount: op.amount, currency },
        { account: ACCOUNTS[to]!, side: 'credit', effect, amount: op.amount, currency },
      ];
      entry = {
        entryId: id,
        description: `${op.kind} ${op.amount}`,
        postings,
        ...(op.kind === 'hold' ? { holdId: deterministicId('hold', id) } : {}),
      };
      if (op.kind === 'hold') open.push({ tenant, postings, holdId: deterministicId('hold', id) });
    }
    const occurredAt = new Date(BASE_TIME + i * 1_000).toISOString();
    const actor = { id: `actor-${i % 2}`, role: 'finance_admin' };
    // Real event shapes (the projection decodes every event): money as a LedgerAdjusted carrying the
    // generated entry, the rest as the start of a reconciliation run, an event without an entry.
    const first = entry?.postings[0];
    const data: JsonObject =
      entry && first
        ? {
            adjustmentId: `a${i}`,
            account: first.account,
            direction: first.side,
            amount: first.amount,
            currency: first.currency,
            reason: `generated ${op.kind}`,
            actor,
            adjustedAt: occurredAt,
            entry: entry as unknown as JsonObject,
          }
        : {
            runId: `r${i}`,
            scope: { kind: 'range', from: occurredAt, to: occurredAt },
            startedAt: occurredAt,
          };
    out.push({
      streamName: entry ? `adjustment-${tenant}.a${i % 3}` : `reconciliation-${tenant}.r${i}`,
      event: {
        id,
        type: entry ? 'LedgerAdjusted' : 'ReconciliationRunStarted',
        data,
        metadata: {
          tenantId: tenant,
          correlationId: `corr-${Math.floor(i / 3)}`,
          causationId: id,
          actor,
          idempotencyKey: `k${i}`,
          occurredAt,
          schemaVersion: 1,
        },
      },
    });
  });
  return out;
}

export async function appendAll(store: EventStore, events: readonly BuiltEvent[]): Promise<bigint> {
  let last = -1n;
  for (const e of events)
    last = (await store.append(e.streamName, [e.event], { expectedRevision: 'any' })).position;
  return last;
}

/** Reference fold of recorded events: totals and version per (tenant, account, currency). */
export function foldBalances(
  events: readonly RecordedEvent[],
  upTo = BigInt(Number.MAX_SAFE_INTEGER),
): Map<string, Totals & { version: number; available: number }> {
  const out = new Map<string, Totals & { version: number; available: number }>();
  for (const e of events) {
    if (e.position > upTo) break;
    const entry = e.data.entry as unknown as JournalEntry | undefined;
    if (!entry) continue;
    const seen = new Set<string>();
    for (const p of entry.postings) {
      const key = `${e.metadata.tenantId}/${p.account}/${p.currency}`;
      const cur = out.get(key) ?? { ...ZERO_TOTALS, version: 0, available: 0 };
      const t = applyPosting(cur, p);
      const version = seen.has(key) ? cur.version : cur.version + 1;
      seen.add(key);
      out.set(key, { ...t, version, available: availableOf(t, normalSideOf(p.account)) });
    }
  }
  return out;
}

const ORDER: Record<(typeof TENANT_TABLES)[number], string> = {
  balances: 'tenant_id, account, currency',
  postings: 'tenant_id, position, line',
  effective_postings: 'tenant_id, account, currency, effective_at, position, line, known_position',
  journal_entries: 'tenant_id, entry_id',
  audit_events: 'tenant_id, position',
  bookings: 'tenant_id, booking_id',
  payouts: 'tenant_id, payout_id',
  top_ups: 'tenant_id, top_up_id',
  tutor_payouts: 'tenant_id, tutor_id, currency',
  search_terms: 'tenant_id, kind, ref',
  event_refs: 'tenant_id, kind, ref, position',
  daily_metrics: 'tenant_id, day, currency, metric',
  daily_active_wallets: 'tenant_id, day, student_id',
};

/** Every read-model table of a schema, in key order, plus its checkpoint position: for equality checks. */
export async function dumpSchema(knex: Knex, schema: ReadModelSchema): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const table of TENANT_TABLES) {
    out[table] = (
      (await knex.raw(`SELECT * FROM ${schema}.${table} ORDER BY ${ORDER[table]}`)) as { rows: unknown[] }
    ).rows;
  }
  out.checkpoint = (
    (await knex.raw(`SELECT name, position FROM ${schema}.checkpoint`)) as { rows: unknown[] }
  ).rows;
  return out;
}

/** Empties a schema's read models and resets its checkpoint, so one database serves many property runs. */
export async function resetSchema(knex: Knex, schema: ReadModelSchema): Promise<void> {
  await knex.raw(`TRUNCATE ${TENANT_TABLES.map((t) => `${schema}.${t}`).join(', ')}`);
  await knex.raw(`UPDATE ${schema}.checkpoint SET position = -1, events_applied = 0`);
}
