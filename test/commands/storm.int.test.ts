import { afterAll, describe, expect, it } from 'vitest';
import type { CommandContext } from '../../src/commands/context.js';
import { ConcurrencyConflictError } from '../../src/commands/errors.js';
import { createLedgerService, type LedgerService } from '../../src/commands/ledgerService.js';
import { DomainError } from '../../src/domain/errors.js';
import { walletAvailable, walletDecider } from '../../src/domain/wallet.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import type { EventStore } from '../../src/eventstore/port.js';
import { PostgresEventStore } from '../../src/eventstore/postgres.js';
import { LedgerFold } from '../property/ledgerFold.js';
import { createTestDatabase, type TestDatabase, usingRealPostgres } from '../support/database.js';

const T = 'storm';
const PRICE = 1_000;
const AFFORDABLE = 57;
const ATTEMPTS = 200;
const clock = () => new Date('2026-03-01T00:00:00.000Z');
const ctx = (key: string, role = 'student'): CommandContext => ({
  tenantId: T,
  actor: { id: 's1', role },
  idempotencyKey: key,
  correlationId: key,
  causationId: key,
});

async function fund(service: LedgerService): Promise<void> {
  await service.initiateTopUp(ctx('fund'), {
    topUpId: 'fund',
    studentId: 's1',
    amount: { amount: PRICE * AFFORDABLE, currency: 'usd' },
  });
  await service.succeedTopUp(ctx('fund-webhook', 'service'), {
    topUpId: 'fund',
    paymentIntentId: 'pi_fund',
    amountReceived: PRICE * AFFORDABLE,
    currency: 'usd',
  });
}

const book = (service: LedgerService, i: number) =>
  service.placeBooking(ctx(`book-${i}`), {
    bookingId: `b${i}`,
    studentId: 's1',
    tutorId: 'u1',
    price: { amount: PRICE, currency: 'usd' },
    scheduledAt: '2026-03-05T10:00:00.000Z',
  });

async function storm(store: EventStore): Promise<void> {
  const service = createLedgerService({ store, clock });
  await fund(service);
  const results = await Promise.allSettled(Array.from({ length: ATTEMPTS }, (_, i) => book(service, i)));
  const ok = results.filter((r) => r.status === 'fulfilled');
  const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  expect(ok).toHaveLength(AFFORDABLE);
  expect(rejected).toHaveLength(ATTEMPTS - AFFORDABLE);
  for (const r of rejected) {
    expect(r.reason).toBeInstanceOf(DomainError);
    expect((r.reason as DomainError).code).toBe('insufficient_funds');
  }
  // Read back from the store: 57 open holds of PRICE, nothing available (fold of every entry) ...
  const fold = new LedgerFold();
  await fold.catchUp(store);
  const open = [...fold.holds.values()].filter((h) => h.resolvedAt === undefined);
  expect(open).toHaveLength(AFFORDABLE);
  expect(open.every((h) => h.amount === PRICE)).toBe(true);
  expect(fold.available(T, 'student:s1:wallet', 'usd')).toBe(0);
  // ... and the wallet aggregate, loaded by a fresh service (no cache), agrees.
  const wallet = await createLedgerService({ store, clock }).handler.load(walletDecider, `wallet-${T}.s1`);
  expect(walletAvailable(wallet.state)).toBe(0);
  const placed = await store.readAll({ maxCount: 10_000, filter: { eventTypes: ['BookingPlaced'] } });
  expect(placed).toHaveLength(AFFORDABLE);
}

describe('concurrency storm: 200 concurrent bookings against a wallet that affords 57', () => {
  it('memory store: exactly 57 holds, available 0, the rest insufficient_funds', async () => {
    await storm(new MemoryEventStore());
  });

  // On a real Postgres server only (CI sets DATABASE_URL): on PGlite the 200 serialized bookings take
  // ~40 s on a loaded 2-core machine, and PGlite runs the same adapter code as the contract suite covers.
  describe.runIf(usingRealPostgres)('postgres store (DATABASE_URL)', () => {
    let testDb: TestDatabase | undefined;
    afterAll(async () => {
      await testDb?.dispose();
    });
    it('exactly 57 holds, available 0, the rest insufficient_funds', async () => {
      testDb = await createTestDatabase();
      const store = new PostgresEventStore(testDb.db);
      try {
        await storm(store);
      } finally {
        await store.close();
      }
    }, 60_000);
  });

  it('four processes (handler instances) on one store never overdraw; every outcome is accounted for', async () => {
    const store = new MemoryEventStore();
    const processes = Array.from({ length: 4 }, () =>
      createLedgerService({
        store,
        clock,
        handler: { maxAttempts: 8, backoff: { baseDelayMs: 1, maxDelayMs: 8 } },
      }),
    );
    await fund(processes[0]!);
    const results = await Promise.allSettled(
      Array.from({ length: ATTEMPTS }, (_, i) => book(processes[i % 4]!, i)),
    );
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    let insufficient = 0;
    let conflicts = 0;
    for (const r of results) {
      if (r.status === 'fulfilled') continue;
      if (r.reason instanceof ConcurrencyConflictError) conflicts++;
      else if (r.reason instanceof DomainError && r.reason.code === 'insufficient_funds') insufficient++;
      else throw r.reason;
    }
    expect(ok + insufficient + conflicts).toBe(ATTEMPTS);
    expect(ok).toBeLessThanOrEqual(AFFORDABLE);
    const fold = new LedgerFold();
    await fold.catchUp(store);
    expect([...fold.holds.values()].filter((h) => h.resolvedAt === undefined)).toHaveLength(ok);
    expect(fold.available(T, 'student:s1:wallet', 'usd')).toBe(PRICE * (AFFORDABLE - ok));
    // Insufficient funds is only ever reported when the wallet really could not pay.
    if (insufficient > 0) expect(ok).toBe(AFFORDABLE);
  });
});
