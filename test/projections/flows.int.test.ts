import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rebuild, replay, verify } from '../../src/cli/projectionsCommands.js';
import type { CommandContext } from '../../src/commands/context.js';
import { LedgerService } from '../../src/commands/ledgerService.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import { PostgresLedgerQueries } from '../../src/projections/postgresLedgerQueries.js';
import { ProjectionRunner } from '../../src/projections/projectionRunner.js';
import { LIVE_SCHEMA } from '../../src/projections/schema.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { dumpSchema, foldBalances } from './fixtures.js';

const T = 'acme';
let clockMs = Date.parse('2026-03-01T10:00:00.000Z');
const clock = () => new Date(clockMs);
let n = 0;
const ctx = (role = 'student', id = 's1'): CommandContext => {
  n++;
  return {
    tenantId: T,
    actor: { id, role },
    idempotencyKey: `key-${n}`,
    correlationId: `corr-${n}`,
    causationId: `req-${n}`,
  };
};

function collect(): { out: PassThrough; text: () => string } {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  return { out, text: () => Buffer.concat(chunks).toString() };
}

describe('read models of real ledger flows (LedgerService on the memory store)', () => {
  let t: TestDatabase;
  const store = new MemoryEventStore();
  const service = new LedgerService({ store, clock });
  let queries: PostgresLedgerQueries;
  let runner: ProjectionRunner;
  let head = -1n;

  beforeAll(async () => {
    t = await createTestDatabase();
    queries = new PostgresLedgerQueries(t.db);
    runner = new ProjectionRunner({ db: t.db, store });
    runner.start();

    const topUp = await service.initiateTopUp(ctx(), {
      topUpId: 'tu1',
      studentId: 's1',
      amount: { amount: 10_000, currency: 'usd' },
    });
    await service.succeedTopUp(ctx('service', 'stripe'), {
      topUpId: 'tu1',
      paymentIntentId: topUp.topUp.paymentIntentId ?? 'pi_1',
      amountReceived: 10_000,
      currency: 'usd',
    });
    // A second top-up refunded to the card in full by two refunds, one of which then fails at Stripe.
    const second = await service.initiateTopUp(ctx(), {
      topUpId: 'tu2',
      studentId: 's1',
      amount: { amount: 5_000, currency: 'usd' },
    });
    await service.succeedTopUp(ctx('service', 'stripe'), {
      topUpId: 'tu2',
      paymentIntentId: second.topUp.paymentIntentId ?? 'pi_2',
      amountReceived: 5_000,
      currency: 'usd',
    });
    for (const [stripeRefundId, amount] of [
      ['re_a', 2_000],
      ['re_b', 3_000],
    ] as const) {
      await service.refundTopUpToCard(ctx('service', 'stripe'), {
        topUpId: 'tu2',
        stripeRefundId,
        amount,
        currency: 'usd',
      });
    }
    await service.reverseFailedCardRefund(ctx('service', 'stripe'), {
      topUpId: 'tu2',
      stripeRefundId: 're_a',
      amount: 2_000,
      currency: 'usd',
      failureReason: 'expired_or_canceled_card',
    });
    const scheduledAt = new Date(clockMs + 7 * 86_400_000).toISOString();
    await service.placeBooking(ctx(), {
      bookingId: 'b1',
      studentId: 's1',
      tutorId: 't1',
      price: { amount: 3_000, currency: 'usd' },
      scheduledAt,
    });
    await service.completeBooking(ctx('tutor', 't1'), { bookingId: 'b1' });
    await service.refundBooking(ctx('finance_admin', 'f1'), {
      bookingId: 'b1',
      amount: 1_000,
      reason: 'late',
    });
    await service.placeBooking(ctx(), {
      bookingId: 'b2',
      studentId: 's1',
      tutorId: 't1',
      price: { amount: 2_000, currency: 'usd' },
      scheduledAt,
    });
    await service.cancelBooking(ctx(), { bookingId: 'b2', reason: 'changed plans' });
    clockMs += 60 * 86_400_000;
    await service.runDueTasks(T, clock());
    await service.requestPayout(ctx('tutor', 't1'), {
      payoutId: 'p1',
      tutorId: 't1',
      amount: { amount: 1_500, currency: 'usd' },
    });
    const paid = await service.markPayoutPaid(ctx('service', 'stripe'), {
      payoutId: 'p1',
      stripeTransferId: 'tr_1',
    });
    head = await store.headPosition();
    expect(head).toBeGreaterThanOrEqual(paid.position);
    expect(await queries.waitForPosition(head, 30_000)).toBe(true);
  });
  afterAll(async () => {
    await runner?.stop();
    await queries?.close();
    await t?.dispose();
  });

  it('entity views match what the commands returned', async () => {
    expect(await queries.getTopUp(T, 'tu1')).toMatchObject({
      status: 'succeeded',
      studentId: 's1',
      amount: { amount: 10_000, currency: 'usd' },
      clientSecret: null,
    });
    // Refunded in full, then one refund failed: the failed one's amount is refundable again.
    expect(await queries.getTopUp(T, 'tu2')).toMatchObject({ status: 'partially_refunded' });
    const b1 = await queries.getBooking(T, 'b1');
    expect(b1).toMatchObject({ status: 'completed', captured: 3_000, refunded: 1_000, tutorId: 't1' });
    expect(b1!.tutorShare + b1!.commission).toBe(3_000);
    expect(await queries.getBooking(T, 'b2')).toMatchObject({ status: 'cancelled', cancellationFee: 0 });
    expect(await queries.getPayout(T, 'p1')).toMatchObject({
      status: 'paid',
      tutorId: 't1',
      amount: { amount: 1_500, currency: 'usd' },
      stripeTransferId: 'tr_1',
    });
    const list = await queries.listBookings(T, { studentId: 's1' }, { limit: 1 });
    expect(list.items.map((b) => b.bookingId)).toEqual(['b1']);
    const page2 = await queries.listBookings(T, { studentId: 's1' }, { limit: 1, cursor: list.nextCursor! });
    expect(page2).toMatchObject({ items: [{ bookingId: 'b2' }], nextCursor: null });
    expect((await queries.listPayouts(T, { status: 'paid' }, { limit: 10 })).items).toHaveLength(1);
    expect(await queries.getBooking('other', 'b1')).toBeNull();
  });

  it('wallet and tutor earnings equal the fold of the events', async () => {
    const events = await store.readAll({ maxCount: 10_000 });
    const folded = foldBalances(events);
    const wallet = folded.get(`${T}/student:s1:wallet/usd`)!;
    expect(await queries.getWallet(T, 's1')).toMatchObject({
      currency: 'usd',
      available: wallet.available,
      version: wallet.version,
      pending: 0,
    });
    const earnings = await queries.getTutorEarnings(T, 't1');
    const available = folded.get(`${T}/tutor:t1:earnings:available/usd`)!;
    expect(earnings).toMatchObject({ currency: 'usd', available: available.available, paidOut: 1_500 });
    const trial = await queries.getTrialBalance(T);
    expect(trial.every((r) => r.postedDifference === 0 && r.pendingDifference === 0)).toBe(true);
  });

  it('statement pages are stable and complete; entry detail has cause, actor and correlation chain', async () => {
    const lines = [];
    let cursor: string | undefined;
    for (let i = 0; i < 50; i++) {
      const page = await queries.getWalletTransactions(T, 's1', { limit: 2, ...(cursor ? { cursor } : {}) });
      lines.push(...page.items);
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    const wallet = await queries.getAccountBalance(T, 'student:s1:wallet');
    expect(lines[0]!.versionAfter).toBe(wallet!.version);
    // The failed card refund is a line of its own, crediting the wallet back.
    const reversal = lines.filter((l) => l.eventType === 'WalletCardRefundFailed');
    expect(reversal.map((l) => [l.side, l.amount])).toEqual([['credit', 2_000]]);
    expect(lines[0]!.balanceAfter.available).toBe(wallet!.available);
    const positions = lines.map((l) => l.position);
    expect([...positions].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0))).toEqual(positions);

    const detail = await queries.getEntry(T, lines[lines.length - 1]!.entryId);
    expect(detail).not.toBeNull();
    expect(detail!.postings.length).toBeGreaterThanOrEqual(2);
    expect(detail!.chain.map((c) => c.eventId)).toContain(detail!.eventId);
    expect(detail!.actor.id).toBeTruthy();

    // As of the first wallet line: the balance right after the top-up.
    const first = lines[lines.length - 1]!;
    const asOf = await queries.getAccountBalance(T, 'student:s1:wallet', { position: first.position });
    expect(asOf).toMatchObject({
      version: 1,
      available: first.balanceAfter.available,
      position: first.position,
    });
    // As of a time: everything that occurred at or before it (the test clock stands still between commands).
    const atTime = lines.filter((l) => Date.parse(l.occurredAt) <= Date.parse(first.occurredAt));
    const asOfTime = await queries.getAccountBalance(T, 'student:s1:wallet', {
      time: new Date(first.occurredAt),
    });
    expect(asOfTime).toMatchObject({ version: Math.max(...atTime.map((l) => l.versionAfter)) });
    const before = await queries.getAccountBalance(T, 'student:s1:wallet', { position: first.position - 1n });
    expect(before).toMatchObject({ version: 0, available: 0, position: -1n });
  });

  it('CLI: replay prints the history, verify passes, rebuild reproduces the same read models', async () => {
    const deps = (tenantId?: string) => {
      const c = collect();
      return { c, deps: { db: t.db, store, out: c.out, ...(tenantId ? { tenantId } : {}) } };
    };
    const r = deps(T);
    expect(await replay(r.deps, { account: 'student:s1:wallet', format: 'json' })).toBe(0);
    const json = r.c
      .text()
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as { position: string; versionAfter: number; balanceAfter: { available: number } },
      );
    const wallet = await queries.getWallet(T, 's1');
    expect(json[json.length - 1]).toMatchObject({
      versionAfter: wallet!.version,
      balanceAfter: { available: wallet!.available },
    });
    const until = deps(T);
    expect(await replay(until.deps, { account: 'student:s1:wallet', until: json[0]!.position })).toBe(0);
    expect(until.c.text()).toContain('1 line(s)');
    expect(await replay(deps().deps, { account: 'student:s1:wallet' })).toBe(2);

    const v = deps();
    expect(await verify(v.deps)).toBe(0);
    expect(v.c.text()).toContain('no differences');

    await runner.stop();
    const before = await dumpSchema(t.db.knex, LIVE_SCHEMA);
    const rb = deps();
    expect(await rebuild(rb.deps)).toBe(0);
    expect(rb.c.text()).toContain(`rebuilt read models to position ${head}`);
    expect(await dumpSchema(t.db.knex, LIVE_SCHEMA)).toEqual(before);
    expect(await rebuild(deps().deps, 'nope')).toBe(2);
  });
});
