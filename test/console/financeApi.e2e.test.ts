import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { token } from '../api/support/harness.js';
import { client, type RealStack, startRealStack } from '../api/support/realStack.js';
import { type Seeded, seedFlows } from './support/seed.js';

/**
 * The finance API behind the console over real HTTP on the real stack (read models from the projection):
 * search, accounts, statements and their CSV, balance series, journal and its CSV, causes, stories,
 * trial balance groups, open clearing accounts and analytics.
 */
const T = 'fin';

describe('finance API', () => {
  let stack: RealStack;
  let seed: Seeded;
  let call: ReturnType<typeof client>;
  let get: (path: string) => Promise<Record<string, unknown>>;
  beforeAll(async () => {
    stack = await startRealStack();
    call = client(stack.baseUrl);
    seed = await seedFlows(stack, T);
    get = async (path) => {
      const res = await call('GET', path, { token: seed.finance });
      expect(res.status, `${path}: ${JSON.stringify(res.body)}`).toBe(200);
      return res.body;
    };
  }, 180_000);
  afterAll(() => stack?.close());

  it('search finds a booking, a student, a Stripe object, an idempotency key, an entry and an account', async () => {
    const kinds = async (q: string) =>
      (
        (await get(`/v1/search?q=${encodeURIComponent(q)}`)).results as Array<{ kind: string; id: string }>
      ).map((r) => `${r.kind}:${r.id}`);
    expect(await kinds(seed.bookingId)).toEqual(expect.arrayContaining([`booking:${seed.bookingId}`]));
    expect((await kinds(seed.bookingId))[0]).toBe(`booking:${seed.bookingId}`);
    expect(await kinds('STU_1')).toContain(`student:${seed.studentId}`);
    expect(await kinds(seed.paymentIntentId.slice(0, 10))).toContain(`stripe:${seed.paymentIntentId}`);
    expect(await kinds('tr_1Seed')).toContain(`stripe:tr_1Seed${'z'.repeat(12)}`);
    // The key the caller sent, without the API's caller prefix.
    expect(await kinds('adj-1')).toContain(`idempotency_key:http:fin_1:adj-1`);
    expect(await kinds(seed.adjustmentEntryId.slice(0, 8))).toContain(`entry:${seed.adjustmentEntryId}`);
    expect(await kinds(seed.payoutId)).toContain(`payout:${seed.payoutId}`);
    expect(await kinds('platform:revenue')).toContain('account:platform:revenue:commission');
    expect(await kinds('nothing-like-this')).toEqual([]);
    // LIKE wildcards in a query are literal.
    expect(await kinds('%')).toEqual([]);
    expect(await kinds('_')).toEqual([]);
  });

  it('accounts list by prefix and kind, paged', async () => {
    const wallets = await get('/v1/accounts?kind=liability&limit=1');
    expect((wallets.items as unknown[]).length).toBe(1);
    expect(wallets.nextCursor).toEqual(expect.any(String));
    const next = await get(`/v1/accounts?kind=liability&limit=1&cursor=${wallets.nextCursor}`);
    expect(next.items).not.toEqual(wallets.items);
    const platform = await get('/v1/accounts?prefix=platform:');
    const names = (platform.items as Array<{ account: string; kind: string }>).map((a) => a.account);
    expect(names).toEqual(expect.arrayContaining(['platform:revenue:commission', 'platform:adjustments']));
    const commission = (platform.items as Array<Record<string, unknown>>).find(
      (a) => a.account === 'platform:revenue:commission',
    );
    // 20% of 3000, less the commission part of the 500 refund.
    expect(commission).toMatchObject({
      kind: 'revenue',
      normalSide: 'credit',
      posted: 600 - 100,
      currency: 'usd',
    });
    const bad = await call('GET', '/v1/accounts?cursor=bm90LWEtY3Vyc29y', { token: seed.finance });
    expect(bad.status).toBe(400);
  });

  it('the statement reads a capture as one line, and its running balance is the as-of balance', async () => {
    const account = `student:${seed.studentId}:wallet`;
    const statement = await get(`/v1/accounts/${account}/statement?order=asc&limit=200`);
    const items = statement.items as Array<{
      eventType: string;
      change: { posted: number; pending: number; available: number };
      lines: unknown[];
      balanceAfter: { posted: number; pending: number; available: number };
      position: string;
      occurredAt: string;
    }>;
    const types = items.map((i) => i.eventType);
    expect(types).toEqual([
      'WalletToppedUp',
      'WalletHoldPlaced',
      'WalletHoldCaptured',
      'WalletRefunded',
      'WalletHoldPlaced',
      'WalletHoldReleased',
      'WalletAdjusted',
    ]);
    const capture = items[2]!;
    expect(capture.lines.length).toBe(2);
    expect(capture.change).toEqual({ posted: -3_000, pending: -3_000, available: 0 });
    expect(capture.balanceAfter).toEqual({ posted: 7_000, pending: 0, available: 7_000 });
    expect(items.at(-1)!.balanceAfter).toEqual({ posted: 7_600, pending: 0, available: 7_600 });
    for (const line of items) {
      const asOf = await get(`/v1/accounts/${account}/balance?position=${line.position}`);
      expect(asOf.available).toBe(line.balanceAfter.available);
    }
    const desc = await get(`/v1/accounts/${account}/statement?limit=3`);
    expect((desc.items as typeof items).map((i) => i.eventType)).toEqual([
      'WalletAdjusted',
      'WalletHoldReleased',
      'WalletHoldPlaced',
    ]);
    const page2 = await get(`/v1/accounts/${account}/statement?limit=3&cursor=${desc.nextCursor}`);
    expect((page2.items as typeof items).map((i) => i.eventType)).toEqual([
      'WalletRefunded',
      'WalletHoldCaptured',
      'WalletHoldPlaced',
    ]);
  });

  it('the statement CSV has the JSON statement lines, whatever the paging', async () => {
    const account = `student:${seed.studentId}:wallet`;
    const res = await fetch(`${stack.baseUrl}/v1/accounts/${account}/statement.csv?order=asc`, {
      headers: { authorization: `Bearer ${seed.finance}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    const upTo = res.headers.get('x-ledger-position');
    const rows = parse(await res.text(), { columns: true, comment: '#' }) as Array<Record<string, string>>;
    const pages: Array<Record<string, unknown>> = [];
    let cursor: string | null = null;
    do {
      const page = await get(
        `/v1/accounts/${account}/statement?order=asc&limit=2&upTo=${upTo}${cursor ? `&cursor=${cursor}` : ''}`,
      );
      pages.push(...(page.items as Array<Record<string, unknown>>));
      cursor = page.nextCursor as string | null;
    } while (cursor);
    expect(rows.map((r) => r.entry_id)).toEqual(pages.map((p) => p.entryId));
    expect(rows.map((r) => Number(r.available_after_minor))).toEqual(
      pages.map((p) => (p.balanceAfter as { available: number }).available),
    );
    expect(rows.map((r) => r.description)).toEqual(pages.map((p) => p.description));
    const missing = await fetch(`${stack.baseUrl}/v1/accounts/student:nobody:wallet/statement.csv`, {
      headers: { authorization: `Bearer ${seed.finance}` },
    });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('the journal CSV has one row per posting of the JSON journal', async () => {
    const res = await fetch(`${stack.baseUrl}/v1/journal.csv`, {
      headers: { authorization: `Bearer ${seed.finance}` },
    });
    expect(res.status).toBe(200);
    const upTo = res.headers.get('x-ledger-position');
    const text = await res.text();
    const rows = parse(text, { columns: true, comment: '#' }) as Array<Record<string, string>>;
    const postings: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await get(`/v1/journal?limit=3&upTo=${upTo}${cursor ? `&cursor=${cursor}` : ''}`);
      for (const e of page.items as Array<{
        entryId: string;
        postings: Array<{ account: string; amount: number }>;
      }>) {
        for (const p of e.postings) postings.push(`${e.entryId}/${p.account}/${p.amount}`);
      }
      cursor = page.nextCursor as string | null;
    } while (cursor);
    expect(rows.map((r) => `${r.entry_id}/${r.account}/${r.amount_minor}`)).toEqual(postings);
    expect(rows.length).toBeGreaterThan(10);
    // The file ends with the tenant's chain head (no chainer runs here: none linked yet).
    expect(text.trimEnd().split('\r\n').at(-1)).toMatch(/^# ledger chain head: none/);
    // Debits equal credits over the journal, per currency.
    let net = 0;
    for (const r of rows)
      if (r.effect === 'post') net += (r.side === 'debit' ? 1 : -1) * Number(r.amount_minor);
    expect(net).toBe(0);
  });

  it('the balance series follows the as-of balances', async () => {
    const account = `student:${seed.studentId}:wallet`;
    const series = await get(`/v1/accounts/${account}/balance-series?points=20`);
    const points = series.points as Array<{ at: string; available: number; position: string }>;
    expect(points.length).toBe(20);
    expect(points.at(-1)!.available).toBe(7_600);
    for (const p of points.filter((_, i) => i % 5 === 0)) {
      const asOf = await get(`/v1/accounts/${account}/balance?asOf=${encodeURIComponent(p.at)}`);
      expect(asOf.available, p.at).toBe(p.available);
    }
  });

  it('the causes of an entry go back to the request; the story of a booking crosses its streams', async () => {
    const causes = await get(`/v1/entries/${seed.adjustmentEntryId}/causes`);
    expect(causes.origin).toMatchObject({ kind: 'request' });
    expect((causes.chain as Array<{ eventType: string }>)[0]!.eventType).toBe('WalletAdjusted');

    const story = await get(`/v1/stories/booking/${seed.bookingId}`);
    const events = story.events as Array<{
      event: { eventType: string; streamName: string };
      postings: unknown[];
    }>;
    const types = events.map((e) => e.event.eventType);
    expect(types).toEqual(
      expect.arrayContaining([
        'WalletHoldPlaced',
        'BookingPlaced',
        'BookingCompleted',
        'WalletHoldCaptured',
        'TutorEarningsRecorded',
        'TutorEarningsCleared',
        'BookingRefunded',
        'WalletRefunded',
        'TutorEarningsReversed',
      ]),
    );
    expect(new Set(events.map((e) => e.event.streamName.split('-')[0]))).toEqual(
      new Set(['wallet', 'booking', 'tutor']),
    );
    expect(story.state).toMatchObject({ status: 'completed' });
    const clearing = (story.accounts as Array<{ account: string; posted: number; pending: number }>).find(
      (a) => a.account === `clearing:booking:${seed.bookingId}`,
    );
    expect(clearing).toMatchObject({ posted: 0, pending: 0 });
    // A capture's causes: the WalletHoldCaptured was caused by BookingCompleted, caused by the request.
    const capture = events.find((e) => e.event.eventType === 'WalletHoldCaptured')!.event as {
      eventId?: string;
    };
    const chain = await get(`/v1/events/${(capture as { eventId: string }).eventId}/causes`);
    expect((chain.chain as Array<{ eventType: string }>).map((c) => c.eventType)).toEqual([
      'WalletHoldCaptured',
      'BookingCompleted',
    ]);

    const topUp = await get(`/v1/stories/topup/${seed.topUpId}`);
    expect(topUp.stripeObjects).toContain(seed.paymentIntentId);
    expect((topUp.state as { view: Record<string, unknown> }).view).not.toHaveProperty('clientSecret');
    const stripe = await get(`/v1/stories/stripe/${seed.paymentIntentId}`);
    expect((stripe.events as unknown[]).length).toBeGreaterThan(0);
    const none = await call('GET', '/v1/stories/booking/bk_none', { token: seed.finance });
    expect(none.status).toBe(404);
  });

  it('trial balance groups, open clearing and analytics', async () => {
    const groups = (await get('/v1/ledger/trial-balance/groups')).groups as Array<Record<string, unknown>>;
    expect(groups).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          group: 'student:*:wallet',
          kind: 'liability',
          prefix: 'student:',
          accounts: 1,
        }),
        expect.objectContaining({ group: 'clearing:booking:*', kind: 'clearing' }),
      ]),
    );
    let debits = 0;
    let credits = 0;
    for (const g of groups) {
      debits += Number(g.debitsPosted);
      credits += Number(g.creditsPosted);
    }
    expect(debits).toBe(credits);
    const clearing = await get('/v1/ledger/clearing');
    expect(clearing.accounts).toEqual([]);

    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const report = await get(`/v1/analytics?from=${today}&to=${tomorrow}&currency=usd`);
    const [day] = report.periods as Array<{
      metrics: Record<string, { amount: number; count: number }>;
      activeWallets: number;
      refundRateBps: number;
    }>;
    expect(day!.metrics.gross_booking_value).toEqual({ amount: 3_000, count: 1 });
    expect(day!.metrics.refunds).toEqual({ amount: 500, count: 1 });
    expect(day!.metrics.top_ups).toEqual({ amount: 10_000, count: 1 });
    expect(day!.metrics.payouts).toEqual({ amount: 1_000, count: 1 });
    expect(day!.metrics.held_for_students!.amount).toBe(7_600);
    expect(day!.metrics.deferred_revenue!.amount).toBe(0);
    expect(day!.metrics['revenue:commission']!.amount).toBe(500);
    expect(day!.refundRateBps).toBe(Math.round((500 * 10_000) / 3_000));
    expect(day!.activeWallets).toBe(1);
    // Every period of the range is there, empty ones too; a stock carries its balance forward.
    const later = new Date(Date.now() + 40 * 86_400_000).toISOString().slice(0, 10);
    const weekly = await get(`/v1/analytics?from=${today}&to=${later}&currency=usd&granularity=week`);
    const weeks = weekly.periods as Array<{ start: string; metrics: Record<string, { amount: number }> }>;
    expect(weeks.length).toBeGreaterThanOrEqual(6);
    expect(new Date(`${weeks[1]!.start}T00:00:00Z`).getUTCDay()).toBe(1);
    expect(weeks.map((w) => w.metrics.held_for_students!.amount)).toEqual(weeks.map(() => 7_600));
    expect(weeks.slice(1).every((w) => w.metrics.gross_booking_value === undefined)).toBe(true);
    const bad = await call('GET', `/v1/analytics?from=${tomorrow}&to=${today}&currency=usd`, {
      token: seed.finance,
    });
    expect(bad.status).toBe(400);
  });

  it('a tenant admin reads, a student and another tenant do not', async () => {
    const admin = await token(T, 'adm_x', 'tenant_admin');
    expect((await call('GET', `/v1/search?q=${seed.bookingId}`, { token: admin })).status).toBe(200);
    const student = await token(T, seed.studentId, 'student');
    expect((await call('GET', `/v1/search?q=${seed.bookingId}`, { token: student })).status).toBe(403);
    const other = await token('other', 'fin_1', 'finance_admin');
    const search = await call('GET', `/v1/search?q=${seed.bookingId}`, { token: other });
    expect(search.body.results).toEqual([]);
    expect((await call('GET', `/v1/stories/booking/${seed.bookingId}`, { token: other })).status).toBe(404);
  });

  it('the OpenAPI document names every finance operation and its schemas', async () => {
    const doc = (await (await fetch(`${stack.baseUrl}/docs/json`)).json()) as {
      paths: Record<string, Record<string, { operationId?: string }>>;
      components: { schemas: Record<string, unknown> };
    };
    expect(doc.paths['/v1/search']!.get!.operationId).toBe('search');
    expect(doc.paths['/v1/stories/{kind}/{id}']!.get!.operationId).toBe('getMoneyStory');
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining(['SearchResults', 'Statement', 'Story', 'CausalChain', 'AnalyticsReport']),
    );
  });
});
