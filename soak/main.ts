import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AppProcess } from './app.js';
import { ArgsError, parseArgs, type SoakOptions, USAGE } from './args.js';
import { badRequestLoop } from './badRequests.js';
import { faultCycle, planFaults, runChaos } from './chaos.js';
import { Cleanup } from './cleanup.js';
import { DocumentChecks } from './documents.js';
import { FaultLog } from './faults.js';
import { diffSnapshots, FinalChecks, RouteMissing } from './final.js';
import { Http } from './http.js';
import { createTenantModel, parsePosition, type TenantModel } from './model.js';
import { PrivatePostgres } from './postgres.js';
import { freePort, run, sleep } from './proc.js';
import { Recorder } from './recorder.js';
import { PrivateRedis } from './redis.js';
import { createRng, deriveSeed } from './rng.js';
import { SoakStripe } from './stripe.js';
import { type CheckResult, formatSummary, verdict } from './summary.js';
import { TokenMinter } from './tokens.js';
import { asObject, createCounters, type PendingCommand, type TenantLimits, Workload } from './workload.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const TENANTS = ['soak_a', 'soak_b'] as const;
const CURRENCY = 'usd';
const SCHEDULER_INTERVAL_MS = 1_000;
const APP_START_TIMEOUT_MS = 90_000;
/** Settings that let the workload reach every flow within minutes: earnings clear at once, small payouts. */
const SETTINGS_PATCH = {
  earningsHoldPeriodDays: 0,
  payoutMin: 100,
  cancellationFreeWindowHours: 24,
  topUpMin: 100,
  topUpMax: 1_000_000,
  allowedCurrencies: [CURRENCY],
  holdExpiryDays: 7,
  // Where Stripe's hosted onboarding sends a tutor back. The app falls back to its own page only when it
  // runs the fake Stripe in-process; the soak's fake runs in the harness, so the tenant names them.
  payoutOnboardingReturnUrl: 'https://soak.example/payouts/done',
  payoutOnboardingRefreshUrl: 'https://soak.example/payouts/again',
};
/**
 * A settings change no remaining command depends on: appending it gives a position after everything
 * the run caused (an unchanged patch appends nothing and answers the settings stream's old position).
 */
const FENCE_PATCH = { holdExpiryDays: 8 };

const log = (line: string) => process.stderr.write(`soak: ${line}\n`);

async function main(): Promise<number> {
  let options: SoakOptions | 'help';
  try {
    options = parseArgs(process.argv.slice(2), () => randomBytes(4).readUInt32BE(0));
  } catch (error) {
    if (error instanceof ArgsError) {
      process.stderr.write(`${error.message}\n${USAGE}\n`);
      return 2;
    }
    throw error;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const cleanup = new Cleanup();
  let aborted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (aborted) return;
    aborted = true;
    log(`${signal}: stopping, cleaning up`);
    void cleanup.runAll().then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await soak(options, cleanup, () => aborted);
  } finally {
    await cleanup.runAll();
  }
}

async function soak(o: SoakOptions, cleanup: Cleanup, isAborted: () => boolean): Promise<number> {
  const startedMs = Date.now();
  const tmp = mkdtempSync(path.join(tmpdir(), 'ledger-soak-'));
  const logDir = path.join(tmp, 'logs');
  mkdirSync(logDir);
  let passed = false;
  cleanup.add('temp dir', () => {
    if (passed && !o.keep) rmSync(tmp, { recursive: true, force: true });
    else log(`kept ${tmp} (logs in ${logDir})`);
  });
  const embedded = o.stack === 'embedded';
  const header = `stack ${o.stack}, ${o.apps} app process(es), ${o.clients} clients, workload ${(o.workloadMs / 1000).toFixed(0)} s, seed ${o.seed}${o.ci ? ', --ci' : ''}`;
  log(header);
  log(`temp dir ${tmp}`);

  const faults = new FaultLog();
  const recorder = new Recorder(faults, createRng(deriveSeed(o.seed, 10_000)), startedMs);
  const checks: CheckResult[] = [];
  const counters = createCounters();
  const jwtSecret = randomBytes(48).toString('base64url');
  const webhookSecret = `whsec_${randomBytes(24).toString('hex')}`;
  const connectWebhookSecret = `whsec_${randomBytes(24).toString('hex')}`;

  // --- Private servers -------------------------------------------------------------------------
  let pg: PrivatePostgres | null = null;
  let redis: PrivateRedis | null = null;
  if (!embedded) {
    pg = await PrivatePostgres.create(tmp, 'ledger');
    const pgRef = pg;
    cleanup.add('private PostgreSQL', () => pgRef.stop('fast'));
    log(`private PostgreSQL on port ${pg.port}`);
    redis = await PrivateRedis.create(tmp);
    const redisRef = redis;
    cleanup.add('private Redis', () => redisRef.stop());
    log(`private Redis on port ${redis.port}`);
  }
  const appPorts: number[] = [];
  for (let i = 0; i < o.apps; i++) appPorts.push(await freePort());
  const started = await SoakStripe.start({
    webhookUrl: `http://127.0.0.1:${appPorts[0]}/v1/webhooks/stripe`,
    webhookSecret,
    connectWebhookUrl: `http://127.0.0.1:${appPorts[0]}/v1/webhooks/stripe/connect`,
    connectWebhookSecret,
  });
  const stripe = typeof started === 'string' ? null : started;
  if (stripe) {
    cleanup.add('fake Stripe', () => stripe.stop());
    log(`fake Stripe (in the harness) at ${stripe.apiBase}`);
  } else {
    recorder.note(
      `Stripe faults SKIPPED: no fake Stripe to drive (${started}); the app uses its own in-process fake`,
    );
  }

  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    LOG_LEVEL: 'info',
    JWT_SECRET: jwtSecret,
    DATA_DIR: path.join(tmp, 'data'),
    EVENT_STORE: 'postgres',
    STRIPE_WEBHOOK_SECRET: webhookSecret,
    STRIPE_CONNECT_WEBHOOK_SECRET: connectWebhookSecret,
    ...(stripe ? { STRIPE_SECRET_KEY: stripe.secretKey, STRIPE_API_BASE: stripe.apiBase } : {}),
    SCHEDULER_INTERVAL_MS: String(SCHEDULER_INTERVAL_MS),
    ...(pg ? { DATABASE_URL: pg.url } : {}),
    ...(redis ? { REDIS_URL: redis.url } : {}),
  };

  const migrate = await run('npm', ['run', '--silent', 'cli', '--', 'migrate'], {
    env,
    cwd: ROOT,
    timeoutMs: 120_000,
    logFile: path.join(logDir, 'migrate.log'),
  });
  if (migrate.code !== 0)
    throw new Error(`migrate failed (${migrate.code}): ${migrate.stderr.trim().slice(-2_000)}`);

  const apps = appPorts.map((port, i) => new AppProcess(`app-${i + 1}`, port, env, ROOT, logDir));
  cleanup.add('app processes', async () => {
    for (const app of apps) await app.stop(15_000);
  });
  // The first app alone (it may run start-up work such as migrations), then the others together.
  const startApp = async (app: AppProcess) => {
    const t = Date.now();
    try {
      await app.start(APP_START_TIMEOUT_MS);
    } catch (error) {
      // Once: on a shared machine a stray signal can hit a starting process; twice is a real failure.
      recorder.note(`${app.name} failed to start once (${(error as Error).message}); retried`);
      await app.start(APP_START_TIMEOUT_MS);
    }
    log(`${app.name} ready at ${app.url} (pid ${app.pid}) in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  };
  await startApp(apps[0]!);
  await Promise.all(apps.slice(1).map(startApp));

  const http = new Http(recorder, () => apps.filter((a) => a.running).map((a) => a.url));
  const tokens = new TokenMinter(jwtSecret);
  const students = Math.max(4, o.clients * 2);
  const tutors = Math.max(2, Math.ceil(o.clients / 2));
  const tenants: TenantModel[] = [
    createTenantModel(TENANTS[0], CURRENCY, students, tutors),
    createTenantModel(TENANTS[1], CURRENCY, Math.max(3, Math.ceil(students / 4)), 2),
  ];
  const pending: PendingCommand[] = [];
  const rejections: string[] = [];
  const limits = new Map<string, TenantLimits>();
  const setupRng = createRng(deriveSeed(o.seed, 20_000));

  // --- Setup: tenant settings and opening balances ----------------------------------------------
  for (const tenant of tenants) {
    const admin = await tokens.token(tenant.tenantId, 'soak-admin', 'tenant_admin');
    const put = await http.command(
      {
        kind: 'setup',
        method: 'PUT',
        path: '/v1/tenant/settings',
        token: admin,
        idempotencyKey: `soak-setup-${tenant.tenantId}`,
        body: SETTINGS_PATCH,
        accept: (s) => s === 200,
      },
      setupRng,
      { maxAttempts: 5, budgetMs: 20_000 },
    );
    const settings = put.status === 200 ? asObject(asObject(put.json).settings) : {};
    if (put.status !== 200)
      recorder.note(
        `tenant settings for ${tenant.tenantId} not updated (${put.status} ${put.code ?? ''}); payouts may all be refused`,
      );
    const position = parsePosition(asObject(put.json).position);
    if (position !== null && position > tenant.lastPosition) tenant.lastPosition = position;
    limits.set(tenant.tenantId, {
      topUpMin: typeof settings.topUpMin === 'number' ? settings.topUpMin : SETTINGS_PATCH.topUpMin,
      topUpMax: typeof settings.topUpMax === 'number' ? settings.topUpMax : 50_000,
      payoutMin: typeof settings.payoutMin === 'number' ? settings.payoutMin : SETTINGS_PATCH.payoutMin,
    });
  }
  const t0Ms = Date.now();
  const stopAtMs = t0Ms + o.workloadMs;
  const workload = new Workload({
    http,
    tokens,
    recorder,
    faults,
    tenants,
    limits,
    pending,
    rejections,
    stopAtMs,
    aborted: isAborted,
    counters,
  });
  await Promise.all(
    tenants.flatMap((tenant) =>
      tenant.studentIds.map((sid) => workload.topUp(tenant, setupRng, -1, sid, 20_000)),
    ),
  );
  log(
    `setup done in ${((Date.now() - startedMs) / 1000).toFixed(1)} s; workload for ${(o.workloadMs / 1000).toFixed(0)} s`,
  );

  // --- Workload + chaos ----------------------------------------------------------------------------
  const holdMs = o.ci ? 3_000 : 6_000;
  const cycle = faultCycle({ postgres: pg, redis, stripe }, embedded);
  const plan = planFaults(o.workloadMs, cycle, holdMs + 4_000);
  const maxOps = Math.max(100, Math.ceil(o.workloadMs / 5));
  const done = () => Date.now() >= stopAtMs || isAborted();
  const progress = setInterval(() => {
    log(
      `t+${((Date.now() - t0Ms) / 1000).toFixed(0)}s: ${recorder.outcomes.total()} requests, ${[...counters.acknowledged.values()].reduce((a, b) => a + b, 0)} acknowledged, ${faults.windows.length} faults, ${recorder.violationCounts.total()} violations`,
    );
  }, 15_000);
  try {
    await Promise.all([
      ...Array.from({ length: o.clients }, (_, i) =>
        workload.client(i, createRng(deriveSeed(o.seed, i)), maxOps),
      ),
      workload.hotWallet(createRng(deriveSeed(o.seed, 1_000)), o.ci ? 8_000 : 10_000, o.ci ? 8 : 16),
      badRequestLoop(
        { http, tokens, tenants: [tenants[0]!, tenants[1]!], webhookSecret, done },
        createRng(deriveSeed(o.seed, 2_000)),
        o.ci ? 3 : 5,
        Math.ceil(o.workloadMs / 100),
      ),
      runChaos({
        t0Ms,
        plan,
        faults,
        targets: { apps, postgres: pg, redis, stripe },
        rng: createRng(deriveSeed(o.seed, 3_000)),
        aborted: isAborted,
        appStartTimeoutMs: APP_START_TIMEOUT_MS,
        holdMs,
        stopInjectingAtMs: t0Ms + Math.round(o.workloadMs * 0.85),
        log,
      }),
    ]);
  } finally {
    clearInterval(progress);
  }
  if (isAborted()) return 130;
  log(`workload over after ${((Date.now() - t0Ms) / 1000).toFixed(1)} s; settling`);

  // --- Settle ----------------------------------------------------------------------------------------
  stripe?.clearFaults();
  for (const app of apps) if (!app.running) await app.start(APP_START_TIMEOUT_MS);
  const final = new FinalChecks(http, tokens, recorder, createRng(deriveSeed(o.seed, 4_000)));
  const resolution = await final.resolvePending(pending, 100_000);
  await sleep(Math.max(2 * SCHEDULER_INTERVAL_MS, 2_500));
  await stripe?.flushWebhooks(70_000);

  let credited = new Map<string, Set<string>>();
  let streamsAvailable = true;
  try {
    credited = await final.waitForTopUps(tenants, o.ci ? 30_000 : 60_000);
  } catch (error) {
    if (!(error instanceof RouteMissing)) throw error;
    streamsAvailable = false;
    checks.push({ name: 'acknowledged effects exactly once', status: 'skipped', detail: error.message });
  }
  await stripe?.flushWebhooks(30_000);
  await sleep(2 * SCHEDULER_INTERVAL_MS);

  const consistency: string[] = [];
  let maxFence = -1n;
  for (const tenant of tenants) {
    const fence = await final.fence(tenant, FENCE_PATCH);
    if (fence === null) {
      recorder.note(
        `no fence position for ${tenant.tenantId}; using the last acknowledged position ${tenant.lastPosition}`,
      );
    }
    const target = fence !== null && fence > tenant.lastPosition ? fence : tenant.lastPosition;
    if (target > maxFence) maxFence = target;
    if (target >= 0n)
      consistency.push(
        `${tenant.tenantId}: ${await final.waitConsistent(tenant, target, 60_000)} at ${target}`,
      );
  }
  const caughtUp = consistency.every((c) => c.includes('caught_up'));
  checks.push({
    name: 'projections caught up (read-your-writes at the last position)',
    status: caughtUp ? 'passed' : 'failed',
    detail: consistency.join('; '),
  });

  // --- Model vs ledger ----------------------------------------------------------------------------------
  const snapshotsBefore = new Map<string, Record<string, unknown>>();
  if (streamsAvailable) {
    const before = recorder.violationCounts.total();
    for (const tenant of tenants) {
      snapshotsBefore.set(
        tenant.tenantId,
        await final.check(tenant, credited.get(tenant.tenantId) ?? new Set()),
      );
    }
    const found = recorder.violationCounts.total() - before;
    checks.push({
      name: 'acknowledged effects exactly once; wallets = client model; trial balance zero',
      status: found === 0 ? 'passed' : 'failed',
      detail: `${tenants.map((t) => `${t.tenantId}: ${t.topUps.size} top-ups, ${t.bookings.size} bookings, ${t.payouts.size} payouts`).join('; ')}${found ? `; ${found} violations` : ''}`,
    });
  } else {
    for (const tenant of tenants) snapshotsBefore.set(tenant.tenantId, await final.snapshot(tenant));
  }

  // --- Documents: gapless numbers after crashes, one per acknowledged effect --------------------------
  {
    const documents = new DocumentChecks(http, tokens, recorder, createRng(deriveSeed(o.seed, 5_000)));
    const before = recorder.violationCounts.total();
    const details: string[] = [];
    for (const tenant of tenants) {
      details.push(await documents.check(tenant, credited.get(tenant.tenantId) ?? new Set(), 60_000));
    }
    const found = recorder.violationCounts.total() - before;
    checks.push({
      name: 'documents numbered without gaps, one per acknowledged effect',
      status: found === 0 ? 'passed' : 'failed',
      detail: details.join('; '),
    });
  }

  // --- Clean shutdown, verifier, rebuild ------------------------------------------------------------
  for (const app of apps) {
    const stopped = await app.stop(30_000);
    if (stopped.code !== 0)
      recorder.violation(
        'process_exit',
        `${app.name} did not exit 0 on SIGTERM (${JSON.stringify(stopped)})`,
      );
  }
  for (const app of apps)
    for (const e of app.unexpectedExits) recorder.violation('process_exit', `unexpected exit: ${e}`);
  checks.push({
    name: 'clean shutdown on SIGTERM',
    status: recorder.violationCounts.get('process_exit') ? 'failed' : 'passed',
    detail: `${apps.length} app process(es)`,
  });

  const cli = await cliCommands(env);
  const verify = async (label: string) => {
    if (!cli.includes('verify')) {
      checks.push({
        name: `verifier (${label})`,
        status: 'skipped',
        detail: '`npm run cli -- verify` does not exist yet',
      });
      return;
    }
    const r = await run('npm', ['run', '--silent', 'cli', '--', 'verify'], {
      env,
      cwd: ROOT,
      timeoutMs: 600_000,
      logFile: path.join(logDir, `verify-${label}.log`),
    });
    const tail = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-3).join(' | ').slice(0, 400);
    if (r.code !== 0)
      recorder.violation(
        'verifier_failed',
        `${label}: exit ${r.code}${r.timedOut ? ' (timed out)' : ''}: ${tail}`,
      );
    // The verifier compares up to what the read models applied; they must cover the whole log we wrote.
    const upTo = /up to position (\d+)/.exec(`${r.stdout}\n${r.stderr}`)?.[1];
    const behind = upTo !== undefined && BigInt(upTo) < maxFence;
    if (behind) {
      recorder.violation(
        'verifier_failed',
        `${label}: verified only up to position ${upTo}, but the log reaches at least ${maxFence} (read models behind)`,
      );
    }
    checks.push({
      name: `verifier (${label})`,
      status: r.code === 0 && !behind ? 'passed' : 'failed',
      detail: behind ? `${tail} | log reaches at least ${maxFence}` : tail,
    });
  };
  await verify('after the run');

  if (!cli.includes('projections')) {
    checks.push({
      name: 'rebuild gives the same read models',
      status: 'skipped',
      detail: '`npm run cli -- projections rebuild` does not exist yet',
    });
  } else {
    const r = await run('npm', ['run', '--silent', 'cli', '--', 'projections', 'rebuild'], {
      env,
      cwd: ROOT,
      timeoutMs: 600_000,
      logFile: path.join(logDir, 'rebuild.log'),
    });
    if (r.code !== 0) {
      recorder.violation(
        'rebuild_differs',
        `projections rebuild exited ${r.code}: ${r.stderr.trim().slice(-300)}`,
      );
      checks.push({
        name: 'rebuild gives the same read models',
        status: 'failed',
        detail: `rebuild exited ${r.code}`,
      });
    } else {
      await verify('after rebuild');
      // One app with the scheduler effectively off, so nothing new is appended while comparing.
      const reader = new AppProcess(
        'app-after-rebuild',
        appPorts[0]!,
        { ...env, SCHEDULER_INTERVAL_MS: String(24 * 3_600_000) },
        ROOT,
        logDir,
      );
      apps.push(reader);
      await reader.start(APP_START_TIMEOUT_MS);
      const diffs: string[] = [];
      for (const tenant of tenants) {
        const after = await final.snapshot(tenant);
        diffs.push(
          ...diffSnapshots(snapshotsBefore.get(tenant.tenantId) ?? {}, after).map(
            (d) => `${tenant.tenantId} ${d}`,
          ),
        );
      }
      await reader.stop(30_000);
      for (const d of diffs) recorder.violation('rebuild_differs', d);
      checks.push({
        name: 'rebuild gives the same read models',
        status: diffs.length === 0 ? 'passed' : 'failed',
        detail:
          diffs.length === 0
            ? 'every wallet, booking, payout, earnings and trial balance read is identical'
            : `${diffs.length} differences`,
      });
    }
  }

  const stripeStats = stripe ? await stripe.stats().catch(() => null) : null;
  const acknowledged = counters.acknowledged;
  const summary = formatSummary({
    header,
    t0Ms,
    totalMs: Date.now() - startedMs,
    outcomes: recorder.outcomes,
    outcomesByKind: [...recorder.outcomesByKind.entries()],
    acknowledged,
    rejected: counters.rejected,
    ambiguous: counters.ambiguous,
    extras: [
      [
        'ambiguous commands resolved at the end',
        `${resolution.resolved} acknowledged, ${resolution.rejected} refused, ${resolution.unresolved} unresolved`,
      ],
      [
        'idempotent replays compared',
        `${counters.replaysCompared} (skipped: ${counters.replaysSkipped} across a Redis loss or a fault)`,
      ],
      ['concurrent duplicate sends', counters.concurrentDuplicates],
      ['same key with another body (must be 422)', counters.keyReuseProbes],
      ['hot-wallet bursts', counters.hotBursts],
      [
        'fake Stripe',
        stripeStats
          ? `${stripeStats.webhookDeliveries} webhook delivery attempts logged, ${stripeStats.webhooksDropped} dropped`
          : 'stats unavailable',
      ],
    ],
    faults: faults.windows,
    excused: recorder.excused,
    latency: [
      ['all', recorder.latencyAll.summary()],
      ['commands', recorder.latencyCommands.summary()],
      ['reads', recorder.latencyReads.summary()],
    ],
    checks,
    violationCounts: recorder.violationCounts,
    violationDetails: recorder.violationDetails,
    notes: [
      ...recorder.notes,
      ...rejections.slice(0, 15).map((r) => `refused: ${r}`),
      ...(rejections.length > 15 ? [`(${rejections.length - 15} more refusals like these not shown)`] : []),
    ],
  });
  process.stdout.write(`${summary}\n`);
  writeFileSync(path.join(logDir, 'summary.txt'), `${summary}\n`);
  passed = verdict({ checks, violationCounts: recorder.violationCounts });
  return passed ? 0 : 1;
}

/** Names the CLI lists in its usage (it prints usage for no command), to skip what is not built yet. */
async function cliCommands(env: NodeJS.ProcessEnv): Promise<string> {
  const r = await run('npm', ['run', '--silent', 'cli'], { env, cwd: ROOT, timeoutMs: 60_000 });
  return `${r.stdout}\n${r.stderr}`;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `soak: FAILED TO RUN: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
