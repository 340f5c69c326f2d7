import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CommandHandler } from '../src/commands/commandHandler.js';
import type { CommandContext } from '../src/commands/context.js';
import { snapshotKindOf } from '../src/commands/snapshots.js';
import { stableHash } from '../src/commands/stableHash.js';
import { deterministicId, eventId } from '../src/domain/ids.js';
import { EVENT_SCHEMA_VERSION } from '../src/domain/metadata.js';
import { type WalletCommand, type WalletState, walletDecider } from '../src/domain/wallet.js';
import type { EventToAppend, JsonObject } from '../src/eventstore/port.js';
import { PostgresEventStore } from '../src/eventstore/postgres.js';
import { PostgresSnapshotStore } from '../src/eventstore/snapshots.js';
import { type BenchSection, freshBenchDatabase, percentile } from './report.js';

/**
 * `npm run bench -- commands`: a command on a wallet with 100 / 1,000 / 10,000 / 100,000 events, cold
 * (a handler with an empty cache, as after a restart or an eviction, or in a second process) and warm,
 * with the heap one cached wallet takes, on Postgres with snapshots (docs/architecture.md, "Flat cost
 * for long-lived streams"). The wallets are written straight into the store as the wallet decider
 * decides them (a top-up, then holds each captured or released), so their state holds every hold.
 */
const SIZES = (process.env.BENCH_COMMANDS_SIZES ?? '100,1000,10000,100000').split(',').map(Number);
const COLD_RUNS = Number(process.env.BENCH_COMMANDS_COLD_RUNS ?? 5);
const WARM_RUNS = Number(process.env.BENCH_COMMANDS_WARM_RUNS ?? 50);
const APPEND_CHUNK = 500;
const TENANT = 'bench';
const clock = () => new Date('2026-06-01T00:00:00.000Z');

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const ctx = (key: string): CommandContext => ({
  tenantId: TENANT,
  actor: { id: 'bench', role: 'service' },
  idempotencyKey: key,
  correlationId: key,
  causationId: key,
});

const holdCommand = (studentId: string, key: string): WalletCommand => ({
  type: 'PlaceWalletHold',
  studentId,
  holdId: deterministicId('bench-hold', key),
  bookingId: `bk_${deterministicId('bench-booking', key).slice(0, 18)}`,
  tutorId: 'tut_bench',
  amount: 100,
  currency: 'usd',
  scheduledAt: '2026-07-01T10:00:00.000Z',
  placedAt: '2026-06-01T10:00:00.000Z',
  timeZone: 'UTC',
  entryId: deterministicId('bench-entry', key),
});

/** Decides `count` events of one wallet in memory (as the handler would) and appends them in chunks. */
async function writeWallet(store: PostgresEventStore, stream: string, studentId: string, count: number) {
  let state: WalletState = walletDecider.initialState();
  let pending: EventToAppend[] = [];
  let revision: bigint | 'no_stream' = 'no_stream';
  const flush = async () => {
    if (pending.length === 0) return;
    revision = (await store.append(stream, pending, { expectedRevision: revision })).nextExpectedRevision;
    pending = [];
  };
  const decide = async (command: WalletCommand, key: string) => {
    const commandHash = stableHash({ type: command.type, command });
    for (const [index, e] of walletDecider.decide(command, state).entries()) {
      state = walletDecider.evolve(state, e);
      pending.push({
        id: eventId(TENANT, command.type, key, index),
        type: e.type,
        data: JSON.parse(JSON.stringify(e.data)) as JsonObject,
        metadata: {
          tenantId: TENANT,
          correlationId: key,
          causationId: key,
          actor: { id: 'bench', role: 'service' },
          idempotencyKey: key,
          occurredAt: clock().toISOString(),
          schemaVersion: EVENT_SCHEMA_VERSION,
          commandType: command.type,
          commandHash,
        },
      });
    }
    if (pending.length >= APPEND_CHUNK) await flush();
  };
  await decide(
    {
      type: 'CreditTopUp',
      studentId,
      topUpId: 'tu_bench',
      paymentIntentId: 'pi_bench',
      amount: 1_000_000_000_000,
      currency: 'usd',
      entryId: deterministicId('bench-entry', `${stream}-topup`),
    },
    `${stream}-topup`,
  );
  for (let i = 1; i < count; i += 2) {
    const key = `${stream}-h${i}`;
    const hold = holdCommand(studentId, key);
    await decide(hold, key);
    if (i + 1 >= count) break;
    const holdId = (hold as { holdId: string }).holdId;
    const settleKey = `${stream}-s${i}`;
    await decide(
      i % 4 === 1
        ? {
            type: 'CaptureWalletHold',
            studentId,
            holdId,
            captured: 100,
            tutorShare: 80,
            commission: 20,
            entryId: deterministicId('bench-entry', settleKey),
          }
        : {
            type: 'ReleaseWalletHold',
            studentId,
            holdId,
            reason: 'cancelled',
            fee: 0,
            tutorShare: 0,
            commission: 0,
            entryId: deterministicId('bench-entry', settleKey),
          },
      settleKey,
    );
  }
  await flush();
}

interface Row {
  events: number;
  firstFoldMs: number;
  coldMs: number[];
  warmMs: number[];
  heapBytes: number;
  estimateBytes: number;
  snapshotBytes: number;
}

export async function run(): Promise<BenchSection> {
  const { db, drop } = await freshBenchDatabase({ prefix: 'ledger_bench_cmd', poolMax: 4 });
  const loadAtStart = os.loadavg()[0]!.toFixed(2);
  try {
    const store = new PostgresEventStore(db);
    const snapshots = new PostgresSnapshotStore(db);
    const runId = randomBytes(3).toString('hex');
    const log = (s: string) => console.log(`  commands: ${s}`);
    const handlerOf = () => new CommandHandler({ store, clock, snapshots });
    const rows: Row[] = [];
    for (const size of SIZES) {
      const studentId = `stu_${runId}_${size}`;
      const stream = `wallet-${TENANT}.${studentId}`;
      log(`writing a wallet of ${size} events`);
      await writeWallet(store, stream, studentId, size);
      let n = 0;
      const command = (handler: CommandHandler) => {
        const key = `${stream}-bench${n++}`;
        return handler.handle(walletDecider, stream, holdCommand(studentId, key), ctx(key), {
          commandType: 'PlaceWalletHold',
        });
      };
      const timed = async (f: () => Promise<unknown>) => {
        const t = performance.now();
        await f();
        return performance.now() - t;
      };
      // The first command ever on the stream folds it whole and writes its first snapshot.
      const first = handlerOf();
      const firstFoldMs = await timed(() => command(first));
      await new Promise((r) => setTimeout(r, 200)); // the snapshot write runs in the background
      const coldMs: number[] = [];
      for (let r = 0; r < COLD_RUNS; r++) {
        const cold = handlerOf();
        coldMs.push(await timed(() => command(cold)));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const warm = handlerOf();
      await command(warm);
      const warmMs: number[] = [];
      for (let r = 0; r < WARM_RUNS; r++) warmMs.push(await timed(() => command(warm)));
      // Heap of one cached wallet: a fresh handler loads it; the difference after a full GC.
      gc();
      const before = process.memoryUsage().heapUsed;
      const measured = handlerOf();
      await measured.load(walletDecider, stream);
      gc();
      const heapBytes = process.memoryUsage().heapUsed - before;
      const estimateBytes = measured.stats().cachedBytes;
      const snapshot = await snapshots.read(stream, snapshotKindOf(walletDecider)!);
      rows.push({
        events: size,
        firstFoldMs,
        coldMs,
        warmMs,
        heapBytes,
        estimateBytes,
        snapshotBytes: snapshot?.payload.length ?? 0,
      });
      log(
        `${size}: first fold ${firstFoldMs.toFixed(1)} ms, cold p50 ${percentile(
          [...coldMs].sort((a, b) => a - b),
          50,
        ).toFixed(1)} ms, warm p50 ${percentile(
          [...warmMs].sort((a, b) => a - b),
          50,
        ).toFixed(2)} ms, heap ${(heapBytes / 1e6).toFixed(2)} MB`,
      );
    }
    await store.close();
    const loadAtEnd = os.loadavg()[0]!.toFixed(2);
    const p = (xs: number[], q: number) =>
      percentile(
        [...xs].sort((a, b) => a - b),
        q,
      );
    const base = rows[0]!;
    const mb = (b: number) => (b / 1e6).toFixed(2);
    const markdown = [
      `One \`PlaceWalletHold\` through the CommandHandler on Postgres with snapshots (PostgresSnapshotStore, one every 200 events, less often for a large state), on a wallet whose stream holds N events (a top-up, then holds each captured or released, as the wallet decider decides them). Cold: a new handler (empty cache: a restart, an eviction, a second process), ${COLD_RUNS} runs; warm: the same handler, ${WARM_RUNS} commands in a row. Heap: what one cached wallet adds after a full GC, beside the cache's own estimate (what its byte bounds apply to). Load average (1 min) ${loadAtStart} at the start and ${loadAtEnd} at the end on ${os.cpus().length} cores: compare ratios within the run.`,
      '',
      '| events | first command ever (folds all, writes the snapshot) ms | cold p50 ms | cold ratio to the smallest | warm p50 ms | warm p99 ms | warm ratio | heap per cached wallet MB | cache estimate MB | snapshot KB |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...rows.map(
        (r) =>
          `| ${r.events.toLocaleString('en-US')} | ${r.firstFoldMs.toFixed(1)} | ${p(r.coldMs, 50).toFixed(1)} | ${(p(r.coldMs, 50) / p(base.coldMs, 50)).toFixed(2)} | ${p(r.warmMs, 50).toFixed(2)} | ${p(r.warmMs, 99).toFixed(2)} | ${(p(r.warmMs, 50) / p(base.warmMs, 50)).toFixed(2)} | ${mb(r.heapBytes)} | ${mb(r.estimateBytes)} | ${(r.snapshotBytes / 1000).toFixed(0)} |`,
      ),
    ].join('\n');
    return {
      name: 'commands',
      title: 'Commands on long-lived wallets (cold and warm, heap per cached stream)',
      markdown,
    };
  } finally {
    await drop();
  }
}
