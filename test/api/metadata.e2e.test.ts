import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { token } from './support/harness.js';
import { client, type RealStack, startRealStack, WEBHOOK_SECRET } from './support/realStack.js';

/**
 * The caller's metadata on money-moving commands, over HTTP against the real stack: stored on the
 * command's events and on the events of the flow steps it triggered, returned on entries, statements,
 * the journal and search, and filtered by `metadata[key]=value` on each.
 */
const T = 'meta';
const WALLET = 'student:stu_m:wallet';

describe(`client metadata over HTTP (${process.env.DATABASE_URL ? 'Postgres' : 'PGlite'})`, () => {
  let s: RealStack;
  let call: ReturnType<typeof client>;
  const tok: Record<string, string> = {};
  let last = '0';
  const at = () => `consistentWith=${last}`;
  const entryIds: Record<string, string> = {};

  beforeAll(async () => {
    s = await startRealStack();
    call = client(s.baseUrl);
    tok.student = await token(T, 'stu_m', 'student');
    tok.tutor = await token(T, 'tut_m', 'tutor');
    tok.finance = await token(T, 'fin_m', 'finance_admin');
    tok.financeB = await token(T, 'fin_m2', 'finance_admin');
  }, 180_000);
  afterAll(() => s?.close());

  const adjust = async (key: string, amount: number, metadata?: Record<string, string>) => {
    const res = await call('POST', '/v1/adjustments', {
      token: tok.finance!,
      key,
      body: {
        account: WALLET,
        direction: 'credit',
        amount,
        currency: 'usd',
        reason: 'seed',
        ...(metadata ? { metadata } : {}),
      },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    last = String(res.body.position);
    entryIds[key] = String(res.body.entryId);
    return res;
  };

  it('stores metadata on the events of the command and of the flow steps it triggered', async () => {
    await adjust('adj-1', 5_000, { order: 'A-1', channel: 'web' });
    await adjust('adj-2', 1_000, { order: 'A-2' });
    await adjust('adj-3', 100);
    // {} is no metadata: the same events as leaving it out.
    await adjust('adj-4', 100, {});
    const booked = await call('POST', '/v1/bookings', {
      token: tok.student!,
      key: 'bk-1',
      body: {
        bookingId: 'bk_m1',
        studentId: 'stu_m',
        tutorId: 'tut_m',
        price: { amount: 2_000, currency: 'usd' },
        scheduledAt: new Date(Date.now() + 86_400_000).toISOString(),
        metadata: { order: 'A-1', lesson: 'algebra' },
      },
    });
    expect(booked.status, JSON.stringify(booked.body)).toBe(201);
    // Complete with metadata in a body, and (below) the existing body-less form still works.
    const completed = await call('POST', '/v1/bookings/bk_m1/complete', {
      token: tok.tutor!,
      key: 'cp-1',
      body: { metadata: { session: 'S-9' } },
    });
    expect(completed.status, JSON.stringify(completed.body)).toBe(200);
    last = String(completed.body.position);

    const events = await s.events();
    const meta = (type: string) =>
      events
        .filter((e) => e.type === type)
        .map((e) => (e.metadata as { clientMetadata?: unknown }).clientMetadata);
    expect(meta('WalletHoldPlaced')).toEqual([{ order: 'A-1', lesson: 'algebra' }]);
    // The booking stream's event is a flow step triggered by the hold: it carries the same metadata.
    expect(meta('BookingPlaced')).toEqual([{ order: 'A-1', lesson: 'algebra' }]);
    expect(meta('BookingCompleted')).toEqual([{ session: 'S-9' }]);
    expect(meta('WalletHoldCaptured')).toEqual([{ session: 'S-9' }]);
    const adjustments = events.filter((e) => e.type === 'WalletAdjusted');
    expect(adjustments.map((e) => (e.metadata as { clientMetadata?: unknown }).clientMetadata)).toEqual([
      { order: 'A-1', channel: 'web' },
      { order: 'A-2' },
      undefined,
      undefined,
    ]);
  });

  it('returns metadata on entries, account entries, wallet transactions and statements', async () => {
    const entry = await call('GET', `/v1/entries/${entryIds['adj-1']}?${at()}`, { token: tok.finance! });
    expect(entry.status, JSON.stringify(entry.body)).toBe(200);
    expect(entry.body.metadata).toEqual({ channel: 'web', order: 'A-1' });
    const plain = await call('GET', `/v1/entries/${entryIds['adj-3']}`, { token: tok.finance! });
    expect(plain.body.metadata).toEqual({});

    const lines = await call('GET', `/v1/accounts/${WALLET}/entries?limit=200&${at()}`, {
      token: tok.student!,
    });
    expect(lines.status).toBe(200);
    const items = lines.body.items as Array<{ entryId: string; metadata: Record<string, string> }>;
    expect(items.find((i) => i.entryId === entryIds['adj-2'])?.metadata).toEqual({ order: 'A-2' });
    expect(items.find((i) => i.entryId === entryIds['adj-3'])?.metadata).toEqual({});

    const statement = await call('GET', `/v1/accounts/${WALLET}/statement?limit=200`, {
      token: tok.finance!,
    });
    expect(statement.status, JSON.stringify(statement.body)).toBe(200);
    const st = statement.body.items as Array<{ entryId: string; metadata: Record<string, string> }>;
    expect(st.find((i) => i.entryId === entryIds['adj-1'])?.metadata).toEqual({
      channel: 'web',
      order: 'A-1',
    });
  });

  it('filters by metadata[key]=value (every pair must match) on entries, statements, journal and search', async () => {
    const q = (pairs: Record<string, string>) =>
      Object.entries(pairs)
        .map(([k, v]) => `${encodeURIComponent(`metadata[${k}]`)}=${encodeURIComponent(v)}`)
        .join('&');
    const ids = (body: Record<string, unknown>) =>
      (body.items as Array<{ entryId: string; eventType: string }>).map((i) => i.eventType);

    const a1 = await call('GET', `/v1/accounts/${WALLET}/entries?${q({ order: 'A-1' })}`, {
      token: tok.student!,
    });
    expect(a1.status, JSON.stringify(a1.body)).toBe(200);
    // Newest first: the capture's lines are the completion's (other metadata), so not here.
    expect(ids(a1.body)).toEqual(['WalletHoldPlaced', 'WalletAdjusted']);
    const both = await call('GET', `/v1/accounts/${WALLET}/entries?${q({ order: 'A-1', channel: 'web' })}`, {
      token: tok.student!,
    });
    expect(ids(both.body)).toEqual(['WalletAdjusted']);
    const none = await call('GET', `/v1/accounts/${WALLET}/entries?${q({ order: 'A-1', channel: 'app' })}`, {
      token: tok.student!,
    });
    expect(none.body.items).toEqual([]);
    // Paging under a filter: one per page, the cursor carries on.
    const p1 = await call('GET', `/v1/accounts/${WALLET}/entries?limit=1&${q({ order: 'A-1' })}`, {
      token: tok.student!,
    });
    expect(ids(p1.body)).toEqual(['WalletHoldPlaced']);
    const p2 = await call(
      'GET',
      `/v1/accounts/${WALLET}/entries?limit=1&cursor=${encodeURIComponent(String(p1.body.nextCursor))}&${q({ order: 'A-1' })}`,
      { token: tok.student! },
    );
    expect(ids(p2.body)).toEqual(['WalletAdjusted']);
    expect(p2.body.nextCursor).toBeNull();

    const tx = await call('GET', `/v1/wallets/stu_m/transactions?${q({ order: 'A-2' })}`, {
      token: tok.student!,
    });
    expect(ids(tx.body)).toEqual(['WalletAdjusted']);

    const st = await call('GET', `/v1/accounts/${WALLET}/statement?order=asc&${q({ order: 'A-1' })}`, {
      token: tok.finance!,
    });
    expect(st.status, JSON.stringify(st.body)).toBe(200);
    expect(ids(st.body)).toEqual(['WalletAdjusted', 'WalletHoldPlaced']);

    const csv = await fetch(`${s.baseUrl}/v1/accounts/${WALLET}/statement.csv?${q({ order: 'A-2' })}`, {
      headers: { authorization: `Bearer ${tok.finance}` },
    });
    expect(csv.status).toBe(200);
    // The last line is the chain head (a `#` comment line, chainHeadExport.ts).
    const rows = (await csv.text())
      .trim()
      .split('\r\n')
      .filter((line) => !line.startsWith('# ledger chain head'));
    expect(rows[0]).toMatch(/,metadata$/);
    expect(rows).toHaveLength(2);
    expect(rows[1]).toContain('"{""order"":""A-2""}"');

    const journal = await call('GET', `/v1/journal?${q({ lesson: 'algebra' })}`, { token: tok.finance! });
    expect(journal.status, JSON.stringify(journal.body)).toBe(200);
    expect(ids(journal.body)).toEqual(['WalletHoldPlaced']);

    const search = await call('GET', `/v1/search?${q({ order: 'A-1' })}`, { token: tok.finance! });
    expect(search.status, JSON.stringify(search.body)).toBe(200);
    const found = search.body.results as Array<{ kind: string; id: string }>;
    expect(found.every((r) => r.kind === 'entry')).toBe(true);
    expect(found.map((r) => r.id)).toContain(entryIds['adj-1']);
    expect(found).toHaveLength(2);
    const narrowed = await call(
      'GET',
      `/v1/search?q=${entryIds['adj-1']!.slice(0, 8)}&${q({ order: 'A-1' })}`,
      { token: tok.finance! },
    );
    expect((narrowed.body.results as Array<{ id: string }>).map((r) => r.id)).toEqual([entryIds['adj-1']]);
  });

  it('a top-up confirmed by Stripe and a four-eyes adjustment carry the metadata they were started with', async () => {
    const clientMetadata = (type: string) =>
      (async () =>
        (await s.events())
          .filter((e) => e.type === type)
          .map((e) => (e.metadata as { clientMetadata?: unknown }).clientMetadata))();
    const topUp = await call('POST', '/v1/wallets/stu_m/top-ups', {
      token: tok.student!,
      key: 'tu-m',
      body: { amount: 700, currency: 'usd', metadata: { campaign: 'spring' } },
    });
    expect(topUp.status, JSON.stringify(topUp.body)).toBe(201);
    // Stripe's webhook knows nothing of the metadata; the credit still carries it.
    const payload = JSON.stringify({
      id: 'evt_meta_1',
      object: 'event',
      type: 'payment_intent.succeeded',
      created: Math.floor(Date.now() / 1000),
      data: {
        object: {
          id: 'pi_meta_1',
          object: 'payment_intent',
          amount: 700,
          amount_received: 700,
          currency: 'usd',
          status: 'succeeded',
          metadata: { tenantId: T, topUpId: topUp.body.topUpId, studentId: 'stu_m' },
        },
      },
    });
    const webhook = await fetch(`${s.baseUrl}/v1/webhooks/stripe`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET }),
      },
      body: payload,
    });
    expect(webhook.status, await webhook.clone().text()).toBeLessThan(300);
    expect(await clientMetadata('TopUpSucceeded')).toEqual([{ campaign: 'spring' }]);
    expect(await clientMetadata('WalletToppedUp')).toEqual([{ campaign: 'spring' }]);

    const proposed = await call('POST', '/v1/adjustment-proposals', {
      token: tok.finance!,
      key: 'p-m',
      body: {
        account: WALLET,
        direction: 'credit',
        amount: 50,
        currency: 'usd',
        reason: 'goodwill',
        metadata: { ticket: 'Z-7' },
      },
    });
    expect(proposed.status, JSON.stringify(proposed.body)).toBe(201);
    const proposalId = (proposed.body.proposal as { proposalId: string }).proposalId;
    const approved = await call('POST', `/v1/adjustment-proposals/${proposalId}/approve`, {
      token: tok.financeB!,
      key: 'a-m',
    });
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    last = String(approved.body.position);
    const entry = await call('GET', `/v1/entries/${String(approved.body.entryId)}?${at()}`, {
      token: tok.finance!,
    });
    expect(entry.body.metadata).toEqual({ ticket: 'Z-7' });
    expect(await clientMetadata('AdjustmentApproved')).toEqual([undefined]);
  });

  it('refuses bad metadata with a 400 and appends nothing; another metadata under the same key is a reused key', async () => {
    const before = (await s.events()).length;
    const body = (metadata: unknown) => ({
      account: WALLET,
      direction: 'credit',
      amount: 1,
      currency: 'usd',
      reason: 'x',
      metadata,
    });
    const tooMany = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v']));
    for (const [i, bad] of [
      tooMany,
      { n: 1 },
      { 'a[b]': 'x' },
      { '': 'x' },
      { k: '' },
      { k: 'x'.repeat(501) },
      { ['k'.repeat(41)]: 'x' },
      { k: 'line\nbreak' },
      ['x'],
      'text',
    ].entries()) {
      const res = await call('POST', '/v1/adjustments', {
        token: tok.finance!,
        key: `bad-${i}`,
        body: body(bad),
      });
      expect(res.status, `${JSON.stringify(bad)}: ${JSON.stringify(res.body)}`).toBe(400);
    }
    const reused = await call('POST', '/v1/adjustments', {
      token: tok.finance!,
      key: 'adj-2',
      body: {
        account: WALLET,
        direction: 'credit',
        amount: 1_000,
        currency: 'usd',
        reason: 'seed',
        metadata: { order: 'A-3' },
      },
    });
    expect(reused.status).toBe(422);
    expect(reused.body.code).toBe('idempotency_key_reused');
    for (const path of [
      `/v1/accounts/${WALLET}/entries?metadata%5Bbad%20key%5D=x`,
      `/v1/accounts/${WALLET}/entries?metadata%5Bk%5D=`,
      `/v1/accounts/${WALLET}/entries?metadata%5Bk%5D=a&metadata%5Bk%5D=b`,
      '/v1/search',
      `/v1/accounts/${WALLET}/statement?metadata=x`,
    ]) {
      const res = await call('GET', path, { token: tok.finance! });
      expect(res.status, `${path}: ${JSON.stringify(res.body)}`).toBe(400);
    }
    expect((await s.events()).length).toBe(before);
  });
});
