import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReconcileArgs, reconcile } from '../../src/cli/reconcileCommand.js';
import { PostgresReconciliationReadModel } from '../../src/reconciliation/readModel.js';
import { MemoryWebhookDedupeStore, PostgresWebhookDedupeStore } from '../../src/stripe/webhookDedupe.js';
import { startLedgerHarness, TENANT } from '../stripe/ledgerHarness.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

// One database for every Postgres-backed piece of reconciliation (each fresh database costs seconds on PGlite).
describe('Stripe and reconciliation on Postgres (PGlite, or real Postgres with DATABASE_URL)', () => {
  let t: TestDatabase;
  // PGlite boot + every migration: allow for a loaded 2-core machine.
  beforeAll(async () => {
    t = await createTestDatabase();
  }, 150_000);
  afterAll(async () => {
    await t.dispose();
  });

  it('webhook dedupe: records once, answers seen, prunes old rows; the memory store is bounded', async () => {
    const store = new PostgresWebhookDedupeStore(t.db);
    expect(await store.seen('evt_1')).toBe(false);
    await store.record({
      eventId: 'evt_1',
      tenantId: 't1',
      type: 'payment_intent.succeeded',
      outcome: 'applied',
    });
    await store.record({
      eventId: 'evt_1',
      tenantId: 't1',
      type: 'payment_intent.succeeded',
      outcome: 'applied',
    });
    expect(await store.seen('evt_1')).toBe(true);
    await t.db.knex.raw(`UPDATE stripe_webhook_events SET processed_at = now() - interval '40 days'`);
    expect(await store.prune(30 * 86_400_000)).toBe(1);
    expect(await store.seen('evt_1')).toBe(false);

    const memory = new MemoryWebhookDedupeStore(2);
    for (const id of ['a', 'b', 'c']) await memory.record({ eventId: id, outcome: 'applied' });
    expect([await memory.seen('a'), await memory.seen('b'), await memory.seen('c')]).toEqual([
      false,
      true,
      true,
    ]);
  });

  it('the CLI reconciles into the read model and writes a CSV report; exit 1 on exceptions', async () => {
    const h = await startLedgerHarness();
    try {
      await h.service.initiateTopUp(h.ctx('init-c1', 'student'), {
        topUpId: 'c1',
        studentId: 's1',
        amount: { amount: 2_500, currency: 'usd' },
        paymentMethod: 'pm_card_visa',
      });
      const args = parseReconcileArgs([
        '--tenant',
        TENANT,
        '--from',
        new Date(Date.now() - 3_600_000).toISOString(),
        '--to',
        new Date(Date.now() + 3_600_000).toISOString(),
        '--format',
        'csv',
        '--out',
        path.join(mkdtempSync(path.join(tmpdir(), 'recon-')), 'report.csv'),
      ]);
      if ('error' in args) throw new Error(args.error);
      const stderr = new PassThrough();
      let log = '';
      stderr.on('data', (c: Buffer) => {
        log += c.toString();
      });
      const code = await reconcile(
        {
          store: h.store,
          stripe: h.gateway,
          commands: h.service,
          db: t.db,
          stdout: new PassThrough(),
          stderr,
        },
        args,
      );
      expect(code).toBe(1); // the charge's fee was unbooked (and is booked now)
      expect(log).toMatch(/1 scanned, 0 matched, 1 exceptions, 1 fees booked/);
      const csv = readFileSync(args.out as string, 'utf8').split('\r\n');
      expect(csv[1]).toMatch(/^unbooked_fee,pi_.*,true,/);

      const runId = /run ([0-9a-f-]+):/.exec(log)?.[1] as string;
      const stored = await new PostgresReconciliationReadModel(t.db).get(TENANT, runId, { maxItems: 10 });
      expect(stored).toMatchObject({ status: 'completed', summary: { unbookedFee: 1, feesBooked: 1 } });
      expect(stored?.items[0]).toMatchObject({
        classification: 'unbooked_fee',
        stripeFee: 103,
        feeBooked: true,
      });

      // Fees booked: a second run is clean.
      const again = await reconcile(
        {
          store: h.store,
          stripe: h.gateway,
          commands: h.service,
          db: t.db,
          stdout: new PassThrough(),
          stderr,
        },
        { ...args, out: `${args.out as string}.2` },
      );
      expect(again).toBe(0);
    } finally {
      await h.close();
    }
  });

  it('rejects bad CLI arguments with a usage message', () => {
    expect(parseReconcileArgs([])).toMatchObject({ error: expect.stringMatching(/--tenant/) });
    expect(parseReconcileArgs(['--tenant', 't1'])).toMatchObject({
      error: expect.stringMatching(/--from and --to, or --payout/),
    });
    expect(parseReconcileArgs(['--tenant', 't1', '--from', 'x', '--to', 'y'])).toMatchObject({
      error: expect.stringMatching(/ISO/),
    });
    expect(parseReconcileArgs(['--tenant', 't1', '--payout', 'po_1', '--format', 'xml'])).toMatchObject({
      error: expect.stringMatching(/json or csv/),
    });
  });
});
