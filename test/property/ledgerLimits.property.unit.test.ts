import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AccountVolumeGuard, type SharedAccountVolumes } from '../../src/commands/accountVolumeGuard.js';
import type { CommandContext } from '../../src/commands/context.js';
import { createLedgerService, type LedgerService } from '../../src/commands/ledgerService.js';
import { DomainError } from '../../src/domain/errors.js';
import { decodeEvent, entryOf } from '../../src/domain/events.js';
import {
  ACCOUNT_VOLUME_LIMIT,
  accountVolume,
  MAX_POSTING_AMOUNT,
  STEP_VOLUME_LIMIT,
} from '../../src/domain/ledgerLimits.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import type { RecordedEvent } from '../../src/eventstore/port.js';
import { applyPosting, balanceKey, type Totals, ZERO_TOTALS } from '../../src/projections/balances.js';
import {
  type BalanceRow,
  foldBatch,
  ledgerRowBuffers,
  projectEvents,
} from '../../src/projections/ledgerProjection.js';
import { LedgerFold } from './ledgerFold.js';

/**
 * "No event is appended that the read side cannot apply" (docs/guarantees.md, "Limits"): random
 * command sequences with extreme amounts (1, the posting limit and one above it, the account limits,
 * Number.MAX_SAFE_INTEGER, anything between) run through the real LedgerService, whose shared-account
 * guard reads a read model that lags the store by a random number of commands. Every command either
 * succeeds or is refused with a DomainError (a refused adjustment appends nothing), and every event the
 * store then holds is applied by the projection's own fold (projectEvents + foldBatch), by the
 * verifier's (decodeEvent + applyPosting, and the trial balance per tenant and currency, every partial
 * sum a safe integer) and by the independent LedgerFold of the model tests.
 */
const T = 'lim';
const CUR = 'usd';
const ACCOUNTS = [
  'student:s0:wallet',
  'student:s1:wallet',
  'tutor:u0:earnings:available',
  'tutor:u0:receivable',
  'platform:revenue:subscriptions',
  'platform:expense:promotions',
  'stripe:balance',
] as const;

type Op =
  | { kind: 'adjust'; account: number; direction: 'credit' | 'debit'; amount: number }
  | { kind: 'fill'; account: number; count: number }
  | { kind: 'book'; student: number; price: number }
  | { kind: 'complete'; booking: number }
  | { kind: 'cancel'; booking: number }
  | { kind: 'project' };

const extreme = fc.oneof(
  fc.constantFrom(
    1,
    MAX_POSTING_AMOUNT - 1,
    MAX_POSTING_AMOUNT,
    MAX_POSTING_AMOUNT + 1,
    ACCOUNT_VOLUME_LIMIT / 2,
    ACCOUNT_VOLUME_LIMIT,
    STEP_VOLUME_LIMIT,
    Number.MAX_SAFE_INTEGER - 1,
    Number.MAX_SAFE_INTEGER,
  ),
  fc.integer({ min: 1, max: MAX_POSTING_AMOUNT }),
  fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('adjust' as const),
      account: fc.nat({ max: ACCOUNTS.length - 1 }),
      direction: fc.constantFrom('credit' as const, 'debit' as const),
      amount: extreme,
    }),
    weight: 5,
  },
  {
    // Maximum-size credits in a row: the limits are reached in a few dozen commands.
    arbitrary: fc.record({
      kind: fc.constant('fill' as const),
      account: fc.nat({ max: ACCOUNTS.length - 1 }),
      count: fc.integer({ min: 1, max: 70 }),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('book' as const),
      student: fc.nat({ max: 1 }),
      price: extreme,
    }),
    weight: 4,
  },
  {
    arbitrary: fc.record({ kind: fc.constant('complete' as const), booking: fc.nat({ max: 20 }) }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant('cancel' as const), booking: fc.nat({ max: 20 }) }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'project' as const }), weight: 2 },
);

/** The read model the guard reads: the projection's own fold of the store, applied only on `catchUp`. */
class FoldedReadModel {
  readonly balances = new Map<string, BalanceRow>();
  position = -1n;

  constructor(private readonly store: MemoryEventStore) {}

  /** Applies every event not applied yet; throws if the projection cannot apply one. */
  async catchUp(): Promise<RecordedEvent[]> {
    const read: RecordedEvent[] = [];
    for (;;) {
      const page = await this.store.readAll({
        ...(this.position >= 0n ? { after: this.position } : {}),
        maxCount: 10_000,
      });
      if (page.length === 0) return read;
      foldBatch(projectEvents(page, this.position), this.balances, ledgerRowBuffers('insert'));
      this.position = page[page.length - 1]!.position;
      read.push(...page);
    }
  }

  readonly volumes: SharedAccountVolumes = {
    atLeast: async (atLeast) =>
      [...this.balances.values()]
        .map((b) => ({ ...b, volume: accountVolume(b) }))
        .filter((b) => b.volume >= atLeast),
    of: async (tenantId, keys) =>
      keys.flatMap(({ account, currency }) => {
        const b = this.balances.get(balanceKey(tenantId, account, currency));
        return b ? [{ tenantId, account, currency, volume: accountVolume(b) }] : [];
      }),
  };
}

/** The verifier's fold (src/projections/verifier.ts): decode, applyPosting, the trial balance. */
function verifierFold(events: readonly RecordedEvent[]): void {
  const folded = new Map<string, Totals & { tenantId: string; currency: string }>();
  for (const event of events) {
    const decoded = decodeEvent(event);
    for (const p of entryOf(decoded)?.postings ?? []) {
      const key = balanceKey(decoded.tenantId, p.account, p.currency);
      const cur = folded.get(key) ?? { ...ZERO_TOTALS, tenantId: decoded.tenantId, currency: p.currency };
      folded.set(key, { ...cur, ...applyPosting(cur, p) });
    }
  }
  const sums = new Map<string, { posted: number; pending: number }>();
  for (const r of folded.values()) {
    const k = `${r.tenantId}/${r.currency}`;
    const s = sums.get(k) ?? { posted: 0, pending: 0 };
    s.posted += r.debitsPosted - r.creditsPosted;
    s.pending += r.debitsPending - r.creditsPending;
    expect(Number.isSafeInteger(s.posted) && Number.isSafeInteger(s.pending)).toBe(true);
    sums.set(k, s);
  }
  for (const s of sums.values()) expect(s).toEqual({ posted: 0, pending: 0 });
}

async function allEvents(store: MemoryEventStore): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  for (;;) {
    const last = out[out.length - 1];
    const page = await store.readAll({ ...(last ? { after: last.position } : {}), maxCount: 10_000 });
    if (page.length === 0) return out;
    out.push(...page);
  }
}

class Run {
  readonly store = new MemoryEventStore();
  readonly readModel = new FoldedReadModel(this.store);
  readonly service: LedgerService;
  readonly bookings: string[] = [];
  private seq = 0;
  private nowMs = Date.parse('2026-03-01T00:00:00.000Z');
  outcomes = { ok: 0, refused: 0, limit: 0 };

  constructor() {
    this.service = createLedgerService({
      store: this.store,
      clock: () => new Date(this.nowMs),
      handler: {
        // refreshMs 0: the list of accounts near the limit is read before every command, from a read
        // model that is as stale as the run makes it.
        accountVolumes: new AccountVolumeGuard({ volumes: this.readModel.volumes, refreshMs: 0 }),
      },
    });
  }

  ctx(role: string): CommandContext {
    const key = `k${++this.seq}`;
    return {
      tenantId: T,
      actor: { id: `${role}-1`, role },
      idempotencyKey: key,
      correlationId: key,
      causationId: key,
    };
  }

  async setUp(): Promise<void> {
    await this.service.updateSettings(this.ctx('finance_admin'), {
      adjustmentApprovalThreshold: Number.MAX_SAFE_INTEGER,
    });
  }

  /** Runs a command: success, or a DomainError; a refused single-stream command appends nothing. */
  private async attempt(action: () => Promise<unknown>, singleStream: boolean): Promise<boolean> {
    const head = await this.store.headPosition();
    try {
      await action();
      this.outcomes.ok++;
      return true;
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      this.outcomes.refused++;
      if (error.code === 'account_limit_exceeded') {
        this.outcomes.limit++;
        expect(error.details).toMatchObject({ account: expect.any(String), limit: expect.any(Number) });
      }
      if (singleStream) expect(await this.store.headPosition()).toBe(head);
      return false;
    }
  }

  private adjust(account: string, direction: 'credit' | 'debit', amount: number): Promise<boolean> {
    return this.attempt(
      () =>
        this.service.adjust(this.ctx('finance_admin'), {
          account,
          direction,
          amount: { amount, currency: CUR },
          reason: 'limits property',
        }),
      true,
    );
  }

  async apply(op: Op): Promise<void> {
    switch (op.kind) {
      case 'adjust':
        await this.adjust(ACCOUNTS[op.account]!, op.direction, op.amount);
        return;
      case 'fill':
        for (let i = 0; i < op.count; i++) {
          if (!(await this.adjust(ACCOUNTS[op.account]!, 'credit', MAX_POSTING_AMOUNT))) return;
        }
        return;
      case 'book': {
        const bookingId = `b${++this.seq}`;
        const placed = await this.attempt(
          () =>
            this.service.placeBooking(this.ctx('student'), {
              bookingId,
              studentId: `s${op.student}`,
              tutorId: 'u0',
              price: { amount: op.price, currency: CUR },
              scheduledAt: new Date(this.nowMs + 72 * 3_600_000).toISOString(),
            }),
          false,
        );
        if (placed) this.bookings.push(bookingId);
        return;
      }
      case 'complete':
      case 'cancel': {
        const bookingId = this.bookings[op.booking % Math.max(1, this.bookings.length)];
        if (!bookingId) return;
        await this.attempt(
          () =>
            op.kind === 'complete'
              ? this.service.completeBooking(this.ctx('tutor'), { bookingId })
              : this.service.cancelBooking(this.ctx('student'), { bookingId, reason: 'limits property' }),
          false,
        );
        return;
      }
      case 'project':
        await this.readModel.catchUp();
        return;
    }
  }

  /** Every event in the store applies on the projection's, the verifier's and the model's folds. */
  async checkAll(): Promise<void> {
    await this.readModel.catchUp();
    const all = await allEvents(this.store);
    verifierFold(all);
    const fold = new LedgerFold();
    for (const event of all) fold.apply(event);
    for (const b of this.readModel.balances.values()) {
      expect(accountVolume(b)).toBeLessThanOrEqual(STEP_VOLUME_LIMIT);
    }
  }
}

describe('ledger limits: every event a command appends can be applied by the read side', () => {
  it('random commands with extreme amounts, a lagging read model: all events apply, refusals are DomainErrors', async () => {
    const totals = { ok: 0, refused: 0, limit: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 30 }), async (ops) => {
        const run = new Run();
        await run.setUp();
        for (const op of ops) await run.apply(op);
        await run.checkAll();
        totals.ok += run.outcomes.ok;
        totals.refused += run.outcomes.refused;
        totals.limit += run.outcomes.limit;
      }),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 60) },
    );
    // The runs reached the limits (a property that never refuses on a limit checks nothing).
    expect(totals.limit).toBeGreaterThan(0);
    expect(totals.ok).toBeGreaterThan(0);
  }, 240_000);
});
