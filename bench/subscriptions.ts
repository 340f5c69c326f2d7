import os from 'node:os';
import { createLedgerService } from '../src/commands/ledgerService.js';
import { stableHash } from '../src/commands/stableHash.js';
import { deterministicId, eventId } from '../src/domain/ids.js';
import { EVENT_SCHEMA_VERSION } from '../src/domain/metadata.js';
import { subscriptionStream, walletStream } from '../src/domain/streams.js';
import { subscriptionDecider, termsOf } from '../src/domain/subscription.js';
import type { Plan } from '../src/domain/subscriptionPlans.js';
import { walletDecider } from '../src/domain/wallet.js';
import type { JsonObject } from '../src/eventstore/port.js';
import { PostgresEventStore } from '../src/eventstore/postgres.js';
import {
  type ImportedEvent,
  importPostgresBatch,
  postgresImportHead,
} from '../src/eventstore/postgresImport.js';
import { ProjectionRunner } from '../src/projections/projectionRunner.js';
import { type BenchSection, freshBenchDatabase, percentile } from './report.js';

/**
 * `npm run bench -- subscriptions`: N subscriptions (BENCH_SUBSCRIPTIONS, default 100,000) all due for
 * renewal at once. Setup: each student's wallet (a top-up, the first period's charge) and subscription
 * (started) are decided by the real deciders and bulk-loaded (importPostgresBatch), started at the same
 * instant; the clock then moves to the period end. Measured in one run: the single-command path (one
 * renewal at a time through SubscriptionService.renew, SINGLE of them, p50/p99), then the scheduler's
 * passes over the rest (DueTaskRunner: every renewal, and the last day's recognition each is due),
 * and the time until the projection runner has applied every event they appended.
 */
const TENANT = 'bench_subs';
const N = Number(process.env.BENCH_SUBSCRIPTIONS ?? 100_000);
const SINGLE = Math.min(500, Math.max(1, Math.floor(N / 100)));
const IMPORT_BATCH = 5_000;
const START = Date.parse('2026-01-01T00:00:00.000Z');
const PLAN: Plan = {
  planId: 'gold',
  name: 'Gold',
  tier: 'gold',
  interval: 'month',
  price: 3_100,
  currency: 'usd',
  benefits: {
    bookingDiscountBps: 1_000,
    lateCancellationFeeBps: null,
    includedCredits: 0,
    creditPriceCap: 0,
  },
  active: true,
};

function eventsOf(i: number): ImportedEvent[] {
  const studentId = `stu_${i}`;
  const subscriptionId = `sub_${i}`;
  const at = new Date(START).toISOString();
  const out: ImportedEvent[] = [];
  const push = (
    stream: string,
    revision: number,
    key: string,
    command: { type: string },
    events: Array<{ type: string; data: unknown }>,
  ) => {
    const commandHash = stableHash({ type: command.type, command });
    for (const [index, e] of events.entries()) {
      out.push({
        streamName: stream,
        revision: BigInt(revision + index),
        id: eventId(TENANT, command.type, key, index),
        type: e.type,
        data: JSON.parse(JSON.stringify(e.data)) as JsonObject,
        metadata: {
          tenantId: TENANT,
          correlationId: key,
          causationId: key,
          actor: { id: 'bench', role: 'service' },
          idempotencyKey: key,
          occurredAt: at,
          schemaVersion: EVENT_SCHEMA_VERSION,
          commandType: command.type,
          commandHash,
        },
        recordedAt: at,
      });
    }
  };
  let wallet = walletDecider.initialState();
  const topUp = {
    type: 'CreditTopUp' as const,
    studentId,
    topUpId: `tu_${i}`,
    paymentIntentId: `pi_${i}`,
    amount: 100_000,
    currency: 'usd',
    entryId: deterministicId('bench-entry', `${i}-topup`),
  };
  const topped = walletDecider.decide(topUp, wallet);
  wallet = topped.reduce(walletDecider.evolve, wallet);
  push(walletStream(TENANT, studentId), 0, `topup-${i}`, topUp, topped);
  const charge = {
    type: 'ChargeSubscription' as const,
    studentId,
    subscriptionId,
    chargeId: 'period-0',
    kind: 'period' as const,
    period: 0,
    planId: PLAN.planId,
    startDay: 0,
    amount: PLAN.price,
    currency: 'usd',
    entryId: deterministicId('bench-entry', `${i}-charge`),
  };
  push(walletStream(TENANT, studentId), 1, `subscribe-${i}`, charge, walletDecider.decide(charge, wallet));
  const start = {
    type: 'StartSubscription' as const,
    subscriptionId,
    studentId,
    terms: termsOf(PLAN, 1),
    chargeId: 'period-0',
    amount: PLAN.price,
    startedAt: at,
  };
  push(
    subscriptionStream(TENANT, subscriptionId),
    0,
    `start-${i}`,
    start,
    subscriptionDecider.decide(start, subscriptionDecider.initialState()),
  );
  return out;
}

export async function run(): Promise<BenchSection> {
  const { db, drop } = await freshBenchDatabase({ prefix: 'ledger_bench_subs', poolMax: 8 });
  const loadAtStart = os.loadavg()[0]!.toFixed(2);
  const log = (s: string) => console.log(`  subscriptions: ${s}`);
  try {
    const store = new PostgresEventStore(db);
    let nowMs = START;
    const service = createLedgerService({ store, clock: () => new Date(nowMs) });
    await service.subscriptions.updatePlans(
      {
        tenantId: TENANT,
        actor: { id: 'adm', role: 'tenant_admin' },
        idempotencyKey: 'plans',
        correlationId: 'p',
        causationId: 'p',
      },
      { plans: [PLAN] },
    );
    log(`bulk-loading ${N.toLocaleString('en-US')} subscriptions`);
    let head = await postgresImportHead(db);
    let batch: ImportedEvent[] = [];
    for (let i = 0; i < N; i++) {
      batch.push(...eventsOf(i));
      if (batch.length >= IMPORT_BATCH) {
        head = await importPostgresBatch(db, head, batch);
        batch = [];
      }
    }
    head = await importPostgresBatch(db, head, batch);
    const projector = new ProjectionRunner({ db, store });
    projector.start();
    // The read models catch up with the bulk load before anything is timed.
    const caughtUp = async (position: bigint) => {
      for (;;) {
        const lag = await projector.lag();
        if (lag.position >= position) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await caughtUp(await store.headPosition());
    log('loaded and projected');

    nowMs = START + 31 * 86_400_000; // January has 31 days: every subscription's period 1 is due
    const now = new Date(nowMs);
    const singleMs: number[] = [];
    for (let i = 0; i < SINGLE; i++) {
      const t = performance.now();
      await service.subscriptions.renew(TENANT, `sub_${i}`, 1, 0, now);
      singleMs.push(performance.now() - t);
    }
    singleMs.sort((a, b) => a - b);
    log(`single-command renewals: p50 ${percentile(singleMs, 50).toFixed(2)} ms`);

    const batchStart = performance.now();
    let passes = 0;
    for (;;) {
      const before = await store.headPosition();
      await service.runDueTasks(TENANT, now);
      passes++;
      if ((await store.headPosition()) === before) break;
    }
    const batchMs = performance.now() - batchStart;
    const renewed = N - SINGLE;
    const end = await store.headPosition();
    await caughtUp(end);
    const projectedMs = performance.now() - batchStart;
    log(
      `scheduler: ${renewed} renewals in ${(batchMs / 1000).toFixed(1)} s, projected after ${(projectedMs / 1000).toFixed(1)} s`,
    );
    await projector.stop();
    await store.close();
    const loadAtEnd = os.loadavg()[0]!.toFixed(2);
    const perRenewalBatch = batchMs / renewed;
    const single50 = percentile(singleMs, 50);
    const singleMean = singleMs.reduce((a, b) => a + b, 0) / singleMs.length;
    const markdown = [
      `${N.toLocaleString('en-US')} monthly subscriptions started at the same instant on Postgres (bulk-loaded: each a top-up and the first period's charge in the wallet stream, SubscriptionStarted in its own stream, projected before timing), all due for renewal at once. First ${SINGLE} renewals one at a time through \`SubscriptionService.renew\` (the single-command path: the wallet's charge, then SubscriptionRenewed with the closing recognition), then the scheduler's passes (\`runDueTasks\`, ${passes} passes) over the rest, each of which also has its last day's recognition due; then the projection runner applies what they appended. Load average (1 min) ${loadAtStart} at the start and ${loadAtEnd} at the end on ${os.cpus().length} cores: compare ratios within the run.`,
      '',
      '| | value |',
      '|---|---:|',
      `| single-command renewal p50 / p99 / mean | ${single50.toFixed(2)} / ${percentile(singleMs, 99).toFixed(2)} / ${singleMean.toFixed(2)} ms |`,
      `| scheduler: renewals | ${renewed.toLocaleString('en-US')} in ${(batchMs / 1000).toFixed(1)} s (${(renewed / (batchMs / 1000)).toFixed(0)}/s, recognitions included) |`,
      `| scheduler per renewal / single-command mean (ratio) | ${perRenewalBatch.toFixed(2)} ms / ${singleMean.toFixed(2)} ms (${(perRenewalBatch / singleMean).toFixed(2)}x) |`,
      `| time until every renewal is projected | ${(projectedMs / 1000).toFixed(1)} s after the scheduler started |`,
      ...(N === 100_000
        ? []
        : ['', `Run with BENCH_SUBSCRIPTIONS=${N}; the suite's default is 100,000 subscriptions.`]),
    ].join('\n');
    return { name: 'subscriptions', title: 'Renewing subscriptions due at once', markdown };
  } finally {
    await drop();
  }
}
