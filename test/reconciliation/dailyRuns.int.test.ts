import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconciliationStream } from '../../src/domain/streams.js';
import { DailyReconciliation, dailyRunId } from '../../src/reconciliation/dailyRuns.js';
import { eventStoreFactSource } from '../../src/reconciliation/ledgerFacts.js';
import { loadRunFromEvents } from '../../src/reconciliation/readModel.js';
import { Reconciler } from '../../src/reconciliation/reconciler.js';
import { allEvents, type LedgerHarness, startLedgerHarness, TENANT } from '../stripe/ledgerHarness.js';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe('daily reconciliation (tenant setting reconciliationDailyHourUtc; real SDK against the fake Stripe)', () => {
  let h: LedgerHarness;
  let now = new Date();
  let enabledDayMs = 0;
  const process = (catchUpDays?: number) =>
    new DailyReconciliation({
      store: h.store,
      reconciler: new Reconciler({
        stripe: h.gateway,
        ledger: () => eventStoreFactSource(h.store),
        store: h.store,
        commands: h.service,
        clock: () => now,
      }),
      runExists: async (tenantId, runId) =>
        (await loadRunFromEvents(h.store, tenantId, runId, { maxItems: 0 })) !== null,
      clock: () => now,
      logger: quiet,
      ...(catchUpDays === undefined ? {} : { catchUpDays }),
    });
  const runStarts = async () =>
    (await allEvents(h.store))
      .filter((e) => e.type === 'ReconciliationRunStarted')
      .map((e) => e.data.scope as { kind: string; from: string; to: string });

  beforeAll(async () => {
    h = await startLedgerHarness();
    const { settings } = await h.service.updateSettings(h.ctx('daily-on', 'tenant_admin'), {
      reconciliationDailyHourUtc: 6,
    });
    expect(settings.reconciliationDailyHourUtc).toBe(6);
    enabledDayMs = Math.floor(Date.now() / DAY_MS) * DAY_MS;
  });
  afterAll(async () => {
    await h?.close();
  });

  it('runs the day the setting was switched on once its run time has passed, and never twice', async () => {
    const a = process();
    now = new Date(enabledDayMs + DAY_MS + 6 * HOUR_MS - 1);
    expect(await a.due(now)).toEqual([]);
    now = new Date(enabledDayMs + DAY_MS + 6 * HOUR_MS);
    const first = await a.tick();
    expect(first.started.map((r) => r.day)).toEqual([new Date(enabledDayMs).toISOString().slice(0, 10)]);
    expect(first.failed).toEqual([]);
    expect(await runStarts()).toEqual([
      {
        kind: 'range',
        from: new Date(enabledDayMs).toISOString(),
        to: new Date(enabledDayMs + DAY_MS).toISOString(),
      },
    ]);
    const run = await loadRunFromEvents(h.store, TENANT, first.started[0]!.runId, { maxItems: 10 });
    expect(run).toMatchObject({ status: 'completed' });
    const [started] = await h.store.readStream(reconciliationStream(TENANT, first.started[0]!.runId), {
      maxCount: 1,
    });
    expect(started?.metadata.actor).toEqual({ id: 'scheduler', role: 'service' });
    // The same process later that day, and another process: nothing is due any more.
    now = new Date(enabledDayMs + DAY_MS + 23 * HOUR_MS);
    expect((await a.tick()).started).toEqual([]);
    expect(await process().due(now)).toEqual([]);
  });

  it('two processes ticking at once after an outage run each missed day exactly once', async () => {
    now = new Date(enabledDayMs + 4 * DAY_MS + 7 * HOUR_MS);
    const [a, b] = await Promise.all([process().tick(), process().tick()]);
    const expected = [1, 2, 3].map((d) => new Date(enabledDayMs + d * DAY_MS).toISOString().slice(0, 10));
    // Each process either ran a day or met the other's run of it. (Two attempts whose events are
    // byte-identical, possible with the test's fixed clock, are one run to the store: both say started.)
    for (const day of expected) {
      expect([...a.started, ...a.skipped].map((r) => r.day)).toContain(day);
      expect([...b.started, ...b.skipped].map((r) => r.day)).toContain(day);
    }
    expect(new Set([...a.started, ...b.started].map((r) => r.day))).toEqual(new Set(expected));
    expect([...a.failed, ...b.failed]).toEqual([]);
    expect(await runStarts()).toHaveLength(4);
    for (const day of expected) {
      const events = await h.store.readStream(reconciliationStream(TENANT, dailyRunId(TENANT, day)), {
        maxCount: 1_000,
      });
      expect(events.filter((e) => e.type === 'ReconciliationRunStarted')).toHaveLength(1);
      expect(events.at(-1)?.type).toBe('ReconciliationRunCompleted');
    }
  });

  it('after a long outage only the last catchUpDays days are reconciled', async () => {
    now = new Date(enabledDayMs + 40 * DAY_MS + 6 * HOUR_MS);
    const due = await process(3).due(now);
    expect(due.map((r) => r.day)).toEqual(
      [37, 38, 39].map((d) => new Date(enabledDayMs + d * DAY_MS).toISOString().slice(0, 10)),
    );
    expect(due.every((r) => r.to.getTime() - r.from.getTime() === DAY_MS)).toBe(true);
  });

  it('switched off: nothing is due; switched on again: only days from then on', async () => {
    await h.service.updateSettings(h.ctx('daily-off', 'tenant_admin'), { reconciliationDailyHourUtc: null });
    now = new Date(enabledDayMs + 40 * DAY_MS + 6 * HOUR_MS);
    expect(await process().due(now)).toEqual([]);
    await h.service.updateSettings(h.ctx('daily-on-again', 'tenant_admin'), {
      reconciliationDailyHourUtc: 23,
    });
    // Switched on again today (the harness's clock is the wall clock): days 0-3 already ran, so day 4 is
    // the first one due, at 23:00 UTC of the day after it.
    const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
    now = new Date(today + 5 * DAY_MS + 23 * HOUR_MS);
    expect((await process().due(now)).map((r) => r.day)).toEqual([
      new Date(today + 4 * DAY_MS).toISOString().slice(0, 10),
    ]);
    now = new Date(today + 5 * DAY_MS + 22 * HOUR_MS);
    expect(await process().due(now)).toEqual([]);
  });
});
