import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { LedgerFact, LedgerFactSource } from '../src/reconciliation/ledgerFacts.js';
import { Reconciler } from '../src/reconciliation/reconciler.js';
import { BENCH_SEED_START, benchSeedAmount, benchSeedIds } from '../src/stripe/fake/benchSeed.js';
import { StripeGateway } from '../src/stripe/stripeGateway.js';
import type { BenchSection } from './report.js';

/**
 * `npm run bench -- reconcile`: one reconciliation run over BENCH_RECONCILE_TXNS (default
 * 1,000,000) balance transactions served by the fake Stripe over HTTP, page size 100, through the
 * real SDK. The fake runs in its own process (seeded in-process there), so the peak RSS measured is the
 * reconciler's. The ledger side is fed from a generator of the matching ledger facts (the same shape
 * the event-store source yields): this measures paging, matching and the index, not event-store reads.
 */
const TXNS = Number(process.env.BENCH_RECONCILE_TXNS ?? 1_000_000);
const here = path.dirname(fileURLToPath(import.meta.url));

function cardFee(amount: number): number {
  return Math.round((amount * 290) / 10_000) + 30;
}

function benchLedger(): LedgerFactSource {
  const occurredAtMs = (i: number) => (BENCH_SEED_START + Math.floor(i / 100)) * 1_000;
  return {
    async *facts(): AsyncIterable<LedgerFact> {
      for (let i = 0; i < TXNS; i++) {
        const ids = benchSeedIds(i);
        const amount = benchSeedAmount(i);
        yield {
          key: ids.paymentIntent,
          side: 'platform',
          amount,
          currency: 'usd',
          occurredAtMs: occurredAtMs(i),
        };
        yield {
          key: `fee:${ids.balanceTransaction}`,
          side: 'platform',
          amount: cardFee(amount),
          currency: 'usd',
          occurredAtMs: occurredAtMs(i),
        };
      }
    },
    stripeBalance: () => new Map(),
  };
}

/** utime + stime of a process from /proc (Linux), in seconds; 0 when unavailable. */
function childCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

async function startFake(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    [
      '--max-old-space-size=6144',
      '--import',
      'tsx',
      path.join(here, '..', 'src', 'stripe', 'fake', 'main.ts'),
      '--bench-seed',
      String(TXNS),
      '--exit-on-stdin-close',
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('fake Stripe did not start within 180 s')), 180_000);
    child.once('exit', (code) => reject(new Error(`fake Stripe exited with ${code}`)));
    lines.on('line', (line) => {
      const msg = JSON.parse(line) as { ready?: boolean; port?: number };
      if (msg.ready && typeof msg.port === 'number') {
        clearTimeout(timer);
        resolve(msg.port);
      }
    });
  });
  return { child, port };
}

export async function run(): Promise<BenchSection> {
  const seedStarted = Date.now();
  const { child, port } = await startFake();
  const seedMs = Date.now() - seedStarted;
  try {
    const gateway = new StripeGateway({
      apiKey: 'sk_test_bench',
      host: '127.0.0.1',
      port,
      protocol: 'http',
      timeoutMs: 30_000,
    });
    const reconciler = new Reconciler({
      stripe: gateway,
      ledger: benchLedger,
      clock: () => new Date(),
      options: { pageSize: 100, slackSeconds: 0, maxIndexEntries: 2 * TXNS + 10 },
    });
    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }, 50);
    const started = Date.now();
    const cpuBefore = process.cpuUsage();
    const childCpuBefore = childCpuSeconds(child.pid);
    const result = await reconciler.run({
      tenantId: 'bench',
      scope: {
        from: new Date(BENCH_SEED_START * 1_000),
        to: new Date((BENCH_SEED_START + Math.ceil(TXNS / 100) + 1) * 1_000),
      },
      onProgress: (p) => {
        if (p.scanned % 100_000 === 0) console.log(`  ${p.scanned} scanned, ${p.matched} matched`);
      },
    });
    const seconds = (Date.now() - started) / 1_000;
    const cpu = process.cpuUsage(cpuBefore);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const fakeCpuSeconds = childCpuSeconds(child.pid) - childCpuBefore;
    const load = (await import('node:os')).loadavg()[0] ?? 0;
    clearInterval(sampler);
    peakRss = Math.max(peakRss, process.resourceUsage().maxRSS * 1_024);
    const summary = result.summary;
    if (!summary || summary.matched !== TXNS || summary.scanned !== TXNS) {
      throw new Error(`expected ${TXNS} matched, got ${JSON.stringify(summary)}`);
    }
    const rate = summary.matched / seconds;
    const peakMb = peakRss / 1_048_576;
    const markdown = [
      `One run over ${TXNS.toLocaleString('en-US')} balance transactions (charges with fees) from the fake Stripe over HTTP`,
      'through the real `stripe` SDK, page size 100, `expand[]=data.source`; the fake runs in its own process;',
      'ledger facts from a generator (2 per transaction: the top-up and its booked fee).',
      '',
      '| metric | value | goal |',
      '|---|---|---|',
      `| matched | ${summary.matched.toLocaleString('en-US')} | all |`,
      `| wall time | ${seconds.toFixed(1)} s | |`,
      `| matched per second (wall clock) | ${Math.round(rate).toLocaleString('en-US')} | >= 20,000 |`,
      `| reconciler CPU time / matched per CPU-second | ${cpuSeconds.toFixed(1)} s / ${Math.round(summary.matched / cpuSeconds).toLocaleString('en-US')} | |`,
      `| fake Stripe CPU time (serving the pages) | ${fakeCpuSeconds.toFixed(1)} s | |`,
      `| load average (1 min) at the end, 2 cores | ${load.toFixed(1)} | |`,
      `| peak RSS (reconciler process) | ${peakMb.toFixed(0)} MB | < 300 MB |`,
      `| fake Stripe seeding + start | ${(seedMs / 1_000).toFixed(1)} s | |`,
      '',
      'The wall-clock rate depends on what else the 2 shared cores run (see the load average); the CPU',
      'times say what the run itself costs: client and fake run in parallel on an otherwise idle 2-core machine.',
      '',
      'Command: `npm run bench -- reconcile` (BENCH_RECONCILE_TXNS to change the size).',
    ].join('\n');
    return { name: 'reconcile', title: 'Reconciliation against Stripe balance transactions', markdown };
  } finally {
    child.kill('SIGTERM');
  }
}
