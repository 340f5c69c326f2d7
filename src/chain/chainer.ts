import type { Database } from '../db/database.js';
import { InvariantViolation } from '../domain/errors.js';
import type { EventStore, RecordedEvent, SubscriptionMessage } from '../eventstore/port.js';
import { createRunnerLock, type RunnerLock } from '../projections/runnerLock.js';
import { ChainCheckpointMovedError, type ChainLink, ChainStore } from './chainStore.js';
import { ChainFold, type ChainHead } from './link.js';

/**
 * The chainer: the one writer of the tenants' hash chains (docs/architecture.md, "The tamper-evident
 * log"). It follows the global log from its checkpoint, as the projection runner does, and links each
 * event to its tenant's previous one in batches, each batch with its checkpoint in one transaction.
 *
 * Why here and not at append time: a chain needs a total order of each tenant's events, and the append
 * path has none across streams on EventStoreDB (several API processes append to different streams of a
 * tenant concurrently) and only the head-row lock on Postgres. Linking at append time would mean a
 * per-tenant lock across processes on every append, serializing a tenant's writes; the global log
 * already is a total order on every store (dense commit-ordered positions on Postgres, the $all commit
 * position on EventStoreDB), so one checkpointed reader of it gives every tenant a total order for free
 * and the append path pays nothing. The price is a short window between an event's commit and its link
 * (the chain lag, reported with every head); docs/guarantees.md says what that means.
 *
 * Exactly one active chainer (an advisory lock, like the projections); the checkpoint compare under its
 * row lock makes even two writers safe. A fresh chain table starts at -1 and links the existing history
 * first.
 */
export interface ChainerOptions {
  db: Database;
  store: EventStore;
  /** Most events linked in one transaction. */
  batchMaxEvents?: number;
  /** Longest a partial batch waits for more events once it has one. */
  batchMaxWaitMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  lockPollMs?: number;
  maxBuffered?: number;
  onError?: (error: unknown) => void;
}

export interface ChainerStatus {
  state: 'stopped' | 'waiting_for_lock' | 'active' | 'backing_off';
  /** Last position this chainer committed (or read when it started). */
  position: bigint;
  eventsLinked: number;
  batchesCommitted: number;
  restarts: number;
  lastError: string | null;
}

const TIMEOUT = Symbol('timeout');

export class Chainer {
  private readonly chain: ChainStore;
  private readonly lock: RunnerLock;
  private readonly opts: Required<Omit<ChainerOptions, 'db' | 'store' | 'onError'>>;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private closeSubscription: (() => Promise<void>) | undefined;
  private wakeSleep: (() => void) | undefined;
  private readonly waiters = new Set<{ position: bigint; resolve: () => void }>();
  private readonly stat: ChainerStatus = {
    state: 'stopped',
    position: -1n,
    eventsLinked: 0,
    batchesCommitted: 0,
    restarts: 0,
    lastError: null,
  };

  constructor(private readonly options: ChainerOptions) {
    this.chain = new ChainStore(options.db);
    this.opts = {
      batchMaxEvents: options.batchMaxEvents ?? 1_000,
      // Lag is not on any request's path: fewer, larger transactions leave the appends more room.
      batchMaxWaitMs: options.batchMaxWaitMs ?? 100,
      backoffInitialMs: options.backoffInitialMs ?? 100,
      backoffMaxMs: options.backoffMaxMs ?? 5_000,
      lockPollMs: options.lockPollMs ?? 250,
      maxBuffered: options.maxBuffered ?? 4_000,
    };
    for (const [k, v] of Object.entries(this.opts)) {
      if (!Number.isSafeInteger(v) || v < 0)
        throw new RangeError(`Chainer option ${k} must be an integer >= 0`);
    }
    if (this.opts.batchMaxEvents < 1 || this.opts.batchMaxEvents > 10_000) {
      throw new RangeError('Chainer batchMaxEvents must be in 1..10000');
    }
    this.lock = createRunnerLock(options.db, 'event-chain', { pollMs: this.opts.lockPollMs });
  }

  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.run();
  }

  /** Stops after the batch in flight (committed or rolled back), then frees the lock. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wakeSleep?.();
    await this.closeSubscription?.();
    await this.loop;
    this.loop = undefined;
  }

  status(): ChainerStatus {
    return { ...this.stat };
  }

  /** Resolves once every event up to `position` is linked (by this chainer); rejects after `timeoutMs`. */
  waitForPosition(position: bigint, timeoutMs: number): Promise<void> {
    if (this.stat.position >= position) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        position,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`chain did not reach position ${position} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  private advance(position: bigint): void {
    this.stat.position = position;
    for (const w of this.waiters) {
      if (w.position <= position) {
        this.waiters.delete(w);
        w.resolve();
      }
    }
  }

  private async run(): Promise<void> {
    let failures = 0;
    try {
      while (!this.stopping) {
        try {
          this.stat.state = 'waiting_for_lock';
          if (!(await this.lock.acquire(() => this.stopping))) break;
          this.stat.state = 'active';
          await this.consume();
          failures = 0;
        } catch (error) {
          if (this.stopping) break;
          this.stat.restarts++;
          this.stat.lastError = error instanceof Error ? error.message : String(error);
          if (error instanceof ChainCheckpointMovedError) continue;
          this.options.onError?.(error);
          failures++;
          this.stat.state = 'backing_off';
          await this.sleep(
            Math.min(this.opts.backoffMaxMs, this.opts.backoffInitialMs * 2 ** Math.min(failures - 1, 16)),
          );
        }
      }
    } finally {
      this.stat.state = 'stopped';
      await this.lock.release();
    }
  }

  private async consume(): Promise<void> {
    let position = await this.chain.checkpoint();
    this.advance(position);
    const subscription = this.options.store.subscribe({
      ...(position >= 0n ? { after: position } : {}),
      maxBuffered: this.opts.maxBuffered,
    });
    this.closeSubscription = () => subscription.close();
    const iterator = subscription[Symbol.asyncIterator]();
    let pending: Promise<IteratorResult<SubscriptionMessage>> | undefined;
    const next = async (timeoutMs: number | null) => {
      pending ??= iterator.next();
      if (timeoutMs === null) {
        const r = await pending;
        pending = undefined;
        return r;
      }
      let timer: NodeJS.Timeout | undefined;
      const r = await Promise.race([
        pending,
        new Promise<typeof TIMEOUT>((resolve) => {
          timer = setTimeout(() => resolve(TIMEOUT), timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (r !== TIMEOUT) pending = undefined;
      return r;
    };
    try {
      while (!this.stopping) {
        const batch: RecordedEvent[] = [];
        let ended = false;
        let startedAt = 0;
        while (batch.length < this.opts.batchMaxEvents) {
          const left =
            batch.length === 0 ? null : Math.max(0, this.opts.batchMaxWaitMs - (Date.now() - startedAt));
          const r = await next(left);
          if (r === TIMEOUT) break;
          if (r.done) {
            ended = true;
            break;
          }
          if (r.value.kind === 'caughtUp') {
            if (batch.length > 0) break;
            continue;
          }
          if (batch.length === 0) startedAt = Date.now();
          batch.push(r.value.event);
        }
        if (batch.length > 0) {
          if (!this.lock.isHeld()) throw new Error('event chain lock lost; re-acquiring before linking more');
          position = await this.link(batch, position);
          this.advance(position);
        }
        if (ended) return;
      }
    } finally {
      this.closeSubscription = undefined;
      await subscription.close();
    }
  }

  /** Links one batch (in log order, all after `expected`) in one transaction; returns the new checkpoint. */
  private async link(batch: readonly RecordedEvent[], expected: bigint): Promise<bigint> {
    let previous = expected;
    const tenants = new Set<string>();
    for (const event of batch) {
      if (event.position <= previous) {
        throw new InvariantViolation(
          `chain: event ${event.id} at position ${event.position} does not follow ${previous} (the log must be read in order)`,
        );
      }
      previous = event.position;
      tenants.add(tenantOf(event));
    }
    const through = previous;
    await this.chain.commit(expected, through, async ({ heads }) => {
      const current = await heads([...tenants]);
      return linkEvents(batch, current.values());
    });
    this.stat.batchesCommitted++;
    this.stat.eventsLinked += batch.length;
    return through;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        if (self.wakeSleep === done) self.wakeSleep = undefined;
        resolve();
      }
      this.wakeSleep = done;
    });
  }
}

/** The tenant an event belongs to; an event without one cannot be chained (nor decoded anywhere). */
export function tenantOf(event: RecordedEvent): string {
  const tenantId = (event.metadata as { tenantId?: unknown }).tenantId;
  if (typeof tenantId !== 'string' || tenantId.length === 0) {
    throw new InvariantViolation(
      `chain: event ${event.id} at position ${event.position} has no tenant in its metadata`,
    );
  }
  return tenantId;
}

/**
 * The links of `events` (in log order) given each tenant's head before them (the same fold the verifier
 * and the export recompute with, link.ts).
 */
export function linkEvents(events: readonly RecordedEvent[], heads: Iterable<ChainHead>): ChainLink[] {
  const fold = new ChainFold(heads);
  return events.map((event) => {
    tenantOf(event);
    const { tenantId, seq, hash } = fold.add(event);
    return { position: event.position, tenantId, seq, eventId: event.id, streamName: event.streamName, hash };
  });
}
