import type { Knex } from 'knex';
import {
  type EventFilter,
  EventStoreDeadlineError,
  EventStoreUnavailableError,
  type RecordedEvent,
  type Subscription,
  type SubscriptionMessage,
} from './port.js';
import { EVENT_COLUMNS, type EventRow, filterSql, toRecordedEvent, toSafeNumber } from './postgresRows.js';

export interface PostgresSubscriptionConfig {
  knex: Knex;
  /** Exclusive start position (-1n: from the start). */
  after: bigint;
  filter: EventFilter | undefined;
  /** Rows per read; at most two batches (the current one and one read ahead) are held. */
  batchSize: number;
  pollIntervalMs: number;
  /** Bound on consecutive failed reads (database unavailable) before the iterator throws. */
  maxReadRetries?: number;
  mapError: (error: unknown) => unknown;
  onClose: (subscription: PostgresSubscription) => void;
}

interface Batch {
  head: bigint;
  events: RecordedEvent[];
}

const RETRY_BASE_DELAY_MS = 100;
const RETRY_MAX_DELAY_MS = 2_000;

/**
 * Pull-based catch-up subscription: reads a bounded batch after its position, and the next one only
 * while the consumer works through the current one, so a slow consumer holds at most two batches. Between batches it
 * sleeps until woken (NOTIFY or a local append) or the poll interval passes.
 *
 * Safe against late commits because the writer assigns positions in commit order (see postgres.ts):
 * every snapshot shows a gap-free prefix of positions, so `position > checkpoint` misses nothing.
 */
export class PostgresSubscription implements Subscription {
  private position: bigint;
  private caughtUpSent = false;
  private stopped = false;
  private woken = false;
  private wakeSleeper: (() => void) | undefined;
  private readonly iterator: AsyncGenerator<SubscriptionMessage>;
  private readonly filter: { sql: string; bindings: Knex.RawBinding[] };

  constructor(private readonly config: PostgresSubscriptionConfig) {
    this.position = config.after;
    this.filter = filterSql(config.filter);
    this.iterator = this.iterate();
  }

  [Symbol.asyncIterator](): AsyncIterator<SubscriptionMessage> {
    return this.iterator;
  }

  wake(): void {
    this.woken = true;
    this.wakeSleeper?.();
  }

  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.wakeSleeper?.();
    this.config.onClose(this);
  }

  private async *iterate(): AsyncGenerator<SubscriptionMessage> {
    try {
      let prefetched: Promise<Batch> | undefined;
      while (!this.stopped) {
        let batch: Batch;
        if (prefetched) {
          batch = await prefetched;
          prefetched = undefined;
        } else {
          this.woken = false;
          batch = await this.readBatchWithRetry(this.position);
        }
        const full = batch.events.length === this.config.batchSize;
        if (full) {
          // Read the next batch while the consumer works through this one (catch-up overlaps database
          // and consumer time); at most two batches are held.
          this.woken = false;
          prefetched = this.readBatchWithRetry(batch.events[batch.events.length - 1]!.position);
          prefetched.catch(() => undefined); // observed when awaited; a closed subscription drops it
        }
        for (const event of batch.events) {
          if (this.stopped) return;
          this.position = event.position;
          yield { kind: 'event', event };
        }
        if (full) continue;
        // A short batch means every event committed as of that read's snapshot has been scanned.
        if (batch.head > this.position) this.position = batch.head;
        if (!this.caughtUpSent) {
          this.caughtUpSent = true;
          if (this.stopped) return;
          yield { kind: 'caughtUp', position: batch.head };
          continue;
        }
        if (!this.woken && !this.stopped) await this.sleep();
      }
    } finally {
      await this.close();
    }
  }

  private sleep(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.config.pollIntervalMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeSleeper = () => {
        this.wakeSleeper = undefined;
        done();
      };
    });
  }

  private async readBatchWithRetry(after: bigint): Promise<Batch> {
    const maxRetries = this.config.maxReadRetries ?? 5;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.readBatch(after);
      } catch (error) {
        const mapped = this.config.mapError(error);
        const transient =
          mapped instanceof EventStoreUnavailableError || mapped instanceof EventStoreDeadlineError;
        if (!transient || attempt >= maxRetries || this.stopped) throw mapped;
        const delayMs = Math.min(RETRY_MAX_DELAY_MS, RETRY_BASE_DELAY_MS * 2 ** attempt);
        await new Promise((resolve) => setTimeout(resolve, delayMs * (0.5 + Math.random() / 2)));
      }
    }
  }

  /**
   * The head and the next batch in one statement, so both come from the same snapshot (whose events
   * are exactly positions 0..head). No `position <= head` bound: it would hide the LIMIT from the
   * planner and turn each batch into a scan and sort of everything after the checkpoint.
   */
  private async readBatch(after: bigint): Promise<Batch> {
    const result = await this.config.knex.raw<{ rows: Array<{ head: number } & EventRow> }>(
      `SELECT h.position AS head, e.*
       FROM event_store_head h
       LEFT JOIN LATERAL (
         SELECT ${EVENT_COLUMNS} FROM events
         WHERE position > ?${this.filter.sql}
         ORDER BY position LIMIT ?
       ) e ON true
       WHERE h.id = 1`,
      [toSafeNumber(after, 'position'), ...this.filter.bindings, this.config.batchSize],
    );
    const first = result.rows[0];
    if (!first) throw new Error('event_store_head row is missing; run the migrations');
    const events = result.rows.filter((r) => r.position !== null).map(toRecordedEvent);
    return { head: BigInt(first.head), events };
  }
}
