import type { Knex } from 'knex';
import type { Database } from '../db/database.js';
import { decideAppend, type StoredEventRef } from './appendRules.js';
import {
  type AppendOptions,
  type AppendResult,
  type EventStore,
  EventStoreDeadlineError,
  EventStoreError,
  EventStoreUnavailableError,
  type EventToAppend,
  type ExpectedRevision,
  type JsonObject,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  StreamNotFoundError,
  type SubscribeOptions,
  type Subscription,
} from './port.js';
import { EVENT_COLUMNS, type EventRow, filterSql, toRecordedEvent, toSafeNumber } from './postgresRows.js';
import { PostgresSubscription } from './postgresSubscription.js';
import { assertValidMaxCount, assertValidStreamName, validateAppend } from './validation.js';

/** NOTIFY channel woken (after commit) with the new head position by every append transaction. */
export const EVENTS_CHANNEL = 'ledger_events';

export interface PostgresEventStoreOptions {
  /** Appends waiting for the writer; beyond this, append fails fast with EventStoreUnavailableError. */
  maxQueuedAppends?: number;
  /** Bounds on one group-commit transaction (at least one append always goes, whatever its size). */
  maxGroupAppends?: number;
  maxGroupEvents?: number;
  maxGroupBytes?: number;
  /** Waiting for the head row lock (another process appending) longer than this fails the group. */
  lockTimeoutMs?: number;
  /** Bound on every statement of the append transaction and of reads. */
  statementTimeoutMs?: number;
  /** Subscription fallback poll interval when no NOTIFY arrives. */
  pollIntervalMs?: number;
  /** Rows fetched per subscription read. */
  readBatchSize?: number;
  /**
   * Test hook: awaited inside the append transaction, after the events are written and before COMMIT,
   * once per append that writes. Lets tests hold a transaction open to provoke the late-commit case.
   */
  beforeCommit?: (streamName: string, events: EventToAppend[]) => Promise<void>;
}

export interface PostgresEventStoreStats {
  /** Group transactions committed. */
  groupsCommitted: number;
  /** Appends and events written inside group transactions (counted before COMMIT). */
  appendsWritten: number;
  eventsWritten: number;
  /** Groups whose state had to be read again because another writer committed while we waited. */
  stateRereads: number;
  /** Groups whose transaction failed and whose appends were retried one by one. */
  groupsSplit: number;
}

interface PendingAppend {
  streamName: string;
  events: EventToAppend[];
  expected: ExpectedRevision;
  bytes: number;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
}

type Outcome = { ok: true; result: AppendResult } | { ok: false; error: EventStoreError };

interface WrittenRow {
  position: number;
  stream_name: string;
  revision: number;
  id: string;
  type: string;
  data: JsonObject;
  metadata: EventToAppend['metadata'];
}

/** Stream revisions and already-stored events of a group; bindings: stream names, ids (JSON arrays). */
const STATE_SQL = `SELECT 'stream' AS kind, stream_name, revision, NULL::text AS id, NULL::bigint AS position,
         NULL::text AS type, NULL::jsonb AS data
  FROM event_streams WHERE stream_name IN (SELECT jsonb_array_elements_text(?::jsonb))
  UNION ALL
  SELECT 'event', stream_name, revision, id::text, position, type, data
  FROM events WHERE id IN (SELECT jsonb_array_elements_text(?::jsonb)::uuid)`;

interface StateRow {
  kind: 'head' | 'stream' | 'event';
  stream_name: string | null;
  /** For the head row: the head as of the statement's snapshot. */
  revision: number | null;
  id: string | null;
  /** For the head row: the locked (latest) head. */
  position: number | null;
  type: string | null;
  data: JsonObject | null;
}

const DEFAULTS = {
  maxQueuedAppends: 10_000,
  maxGroupAppends: 256,
  maxGroupEvents: 5_000,
  maxGroupBytes: 16 * 1024 * 1024,
  lockTimeoutMs: 10_000,
  statementTimeoutMs: 30_000,
  pollIntervalMs: 1_000,
  readBatchSize: 1_000,
};

/**
 * Event store on Postgres (or PGlite) through knex.
 *
 * Positions are dense and assigned in commit order: every append transaction first locks the one-row
 * `event_store_head` (SELECT ... FOR UPDATE), takes positions head+1.., writes, moves the head and
 * commits; the next writer (in this or any other process) gets the lock only after that commit is
 * visible. So the committed events are always a gap-free prefix of positions and a reader of
 * `position > checkpoint` never skips one that commits late.
 *
 * Serializing costs throughput, which group commit buys back: concurrent append calls of this process
 * queue up (bounded) and one writer takes them in groups (bounded) into a single transaction, deciding
 * each append on its own (appendRules.decideAppend) so one conflict does not fail the others. The writer
 * is the only code that opens append transactions, which also keeps PGlite (one connection) safe.
 */
export class PostgresEventStore implements EventStore {
  readonly kind = 'postgres' as const;
  private readonly knex: Knex;
  private readonly settings: typeof DEFAULTS;
  private readonly queue: PendingAppend[] = [];
  private writing: Promise<void> | undefined;
  private closed = false;
  private readonly subscriptions = new Set<PostgresSubscription>();
  private unlisten: Promise<() => Promise<void>> | undefined;
  private readonly counters: PostgresEventStoreStats = {
    groupsCommitted: 0,
    appendsWritten: 0,
    eventsWritten: 0,
    stateRereads: 0,
    groupsSplit: 0,
  };

  constructor(
    private readonly db: Database,
    private readonly options: PostgresEventStoreOptions = {},
  ) {
    this.knex = db.knex;
    this.settings = { ...DEFAULTS, ...definedOnly(options) };
  }

  append(streamName: string, events: EventToAppend[], options: AppendOptions): Promise<AppendResult> {
    try {
      validateAppend(streamName, events, options);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.closed) return Promise.reject(new EventStoreUnavailableError('event store is closed'));
    if (this.queue.length >= this.settings.maxQueuedAppends) {
      return Promise.reject(
        new EventStoreUnavailableError(
          `append queue full (${this.settings.maxQueuedAppends} appends waiting); retry later`,
        ),
      );
    }
    const bytes = events.reduce(
      (sum, e) => sum + JSON.stringify(e.data).length + JSON.stringify(e.metadata).length,
      0,
    );
    return new Promise<AppendResult>((resolve, reject) => {
      this.queue.push({ streamName, events, expected: options.expectedRevision, bytes, resolve, reject });
      this.startWriter();
    });
  }

  private startWriter(): void {
    if (this.writing) return;
    this.writing = this.drain().finally(() => {
      this.writing = undefined;
      // An append may have queued between the last take and the end of the loop.
      if (this.queue.length > 0) this.startWriter();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      await this.writeGroup(this.takeGroup(), true);
    }
  }

  private takeGroup(): PendingAppend[] {
    const { maxGroupAppends, maxGroupEvents, maxGroupBytes } = this.settings;
    const group: PendingAppend[] = [this.queue.shift()!];
    let events = group[0]!.events.length;
    let bytes = group[0]!.bytes;
    while (this.queue.length > 0 && group.length < maxGroupAppends) {
      const next = this.queue[0]!;
      if (events + next.events.length > maxGroupEvents || bytes + next.bytes > maxGroupBytes) break;
      group.push(this.queue.shift()!);
      events += next.events.length;
      bytes += next.bytes;
    }
    return group;
  }

  /**
   * One transaction for the group. Results are settled only after COMMIT (or rollback), so nobody sees
   * a success that did not commit. If the transaction itself fails and the group had several appends,
   * each is retried alone once, so one poisonous append cannot fail its neighbours; the retry is safe
   * because event ids are deterministic (a write that did commit replays as the original result).
   */
  private async writeGroup(group: PendingAppend[], splitOnFailure: boolean): Promise<void> {
    let outcomes: Outcome[];
    try {
      outcomes = await this.knex.transaction((trx) => this.writeInTransaction(trx, group), {
        isolationLevel: 'read committed',
      });
    } catch (error) {
      if (splitOnFailure && group.length > 1) {
        this.counters.groupsSplit++;
        for (const pending of group) await this.writeGroup([pending], false);
        return;
      }
      const mapped = mapDatabaseError(error);
      for (const pending of group) pending.reject(mapped);
      return;
    }
    this.counters.groupsCommitted++;
    group.forEach((pending, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) pending.resolve(outcome.result);
      else pending.reject(outcome.error);
    });
    if (outcomes.some((o) => o.ok)) this.wakeSubscriptions();
  }

  private async writeInTransaction(trx: Knex.Transaction, group: PendingAppend[]): Promise<Outcome[]> {
    const streamNames = [...new Set(group.map((p) => p.streamName))];
    const ids = group.flatMap((p) => p.events.map((e) => e.id));
    const stateBindings = [JSON.stringify(streamNames), JSON.stringify(ids)];
    // One round trip takes the head row lock and reads the group's state (stream revisions, already
    // stored ids). The reads use the statement's snapshot, taken before the lock wait; they are current
    // only if nobody committed in between, which shows as the locked head (latest row version) equal to
    // the head in the snapshot. Otherwise (another process appended meanwhile) read the state again: a
    // new statement's snapshot includes every commit made before we got the lock.
    const first = await trx.raw<{ rows: StateRow[] }>(
      `WITH locked AS (
         SELECT position,
                set_config('lock_timeout', ?, true) AS lock_timeout,
                set_config('statement_timeout', ?, true) AS statement_timeout,
                set_config('idle_in_transaction_session_timeout', ?, true) AS idle_timeout
         FROM event_store_head WHERE id = 1 FOR UPDATE
       )
       SELECT 'head' AS kind, NULL::text AS stream_name,
              (SELECT position FROM event_store_head WHERE id = 1) AS revision,
              NULL::text AS id, (SELECT position FROM locked) AS position, NULL::text AS type, NULL::jsonb AS data
       UNION ALL
       ${STATE_SQL}`,
      [
        `${this.settings.lockTimeoutMs}ms`,
        `${this.settings.statementTimeoutMs}ms`,
        `${this.settings.statementTimeoutMs}ms`,
        ...stateBindings,
      ],
    );
    const headRow = first.rows.find((r) => r.kind === 'head');
    if (headRow?.position === null || headRow?.position === undefined) {
      throw new Error('event_store_head row is missing; run the migrations');
    }
    const head = { position: headRow.position };
    const fresh = headRow.revision === headRow.position;
    if (!fresh) this.counters.stateRereads++;
    const stateRows = fresh
      ? first.rows
      : (await trx.raw<{ rows: StateRow[] }>(STATE_SQL, stateBindings)).rows;

    const current = new Map<string, bigint>();
    const known = new Map<string, StoredEventRef>();
    for (const r of stateRows) {
      if (r.kind === 'stream') {
        current.set(r.stream_name!, BigInt(r.revision!));
      } else if (r.kind === 'event') {
        known.set(r.id!, {
          id: r.id!,
          streamName: r.stream_name!,
          revision: BigInt(r.revision!),
          position: BigInt(r.position!),
          type: r.type!,
          data: r.data!,
        });
      }
    }

    let nextPosition = BigInt(head.position) + 1n;
    const rows: WrittenRow[] = [];
    const written: PendingAppend[] = [];
    const outcomes = group.map((pending): Outcome => {
      const existing = new Map<string, StoredEventRef>();
      for (const e of pending.events) {
        const found = known.get(e.id);
        if (found) existing.set(e.id, found);
      }
      try {
        const decision = decideAppend(
          pending.streamName,
          pending.events,
          pending.expected,
          current.get(pending.streamName) ?? 'no_stream',
          existing,
        );
        if (decision.kind === 'replay') return { ok: true, result: decision.result };
        pending.events.forEach((e, i) => {
          const row: WrittenRow = {
            position: toSafeNumber(nextPosition, 'position'),
            stream_name: pending.streamName,
            revision: toSafeNumber(decision.firstRevision + BigInt(i), 'revision'),
            id: e.id,
            type: e.type,
            data: e.data,
            metadata: e.metadata,
          };
          rows.push(row);
          known.set(e.id, {
            id: e.id,
            streamName: row.stream_name,
            revision: BigInt(row.revision),
            position: nextPosition,
            type: e.type,
            data: e.data,
          });
          nextPosition++;
        });
        const lastRevision = decision.firstRevision + BigInt(pending.events.length - 1);
        current.set(pending.streamName, lastRevision);
        written.push(pending);
        return { ok: true, result: { nextExpectedRevision: lastRevision, position: nextPosition - 1n } };
      } catch (error) {
        if (error instanceof EventStoreError) return { ok: false, error };
        throw error;
      }
    });

    if (rows.length > 0) {
      const newHead = rows[rows.length - 1]!.position;
      const touched = [...new Set(written.map((p) => p.streamName))].map((name) => ({
        stream_name: name,
        revision: toSafeNumber(current.get(name)!, 'revision'),
      }));
      // One statement writes the events, the stream revisions and the head, and queues the NOTIFY
      // (delivered by Postgres only at commit).
      await trx.raw(
        `WITH inserted AS (
           INSERT INTO events (position, stream_name, revision, id, type, data, metadata)
           SELECT x.position, x.stream_name, x.revision, x.id, x.type, x.data, x.metadata
           FROM jsonb_to_recordset(?::jsonb)
             AS x(position bigint, stream_name text, revision bigint, id uuid, type text, data jsonb, metadata jsonb)
         ), streams AS (
           INSERT INTO event_streams (stream_name, revision)
           SELECT s.stream_name, s.revision FROM jsonb_to_recordset(?::jsonb) AS s(stream_name text, revision bigint)
           ON CONFLICT (stream_name) DO UPDATE SET revision = excluded.revision
         ), moved AS (
           UPDATE event_store_head SET position = ? WHERE id = 1 RETURNING position
         )
         SELECT pg_notify('${EVENTS_CHANNEL}', position::text) FROM moved`,
        [JSON.stringify(rows), JSON.stringify(touched), newHead],
      );
      this.counters.appendsWritten += written.length;
      this.counters.eventsWritten += rows.length;
      if (this.options.beforeCommit) {
        for (const pending of written) await this.options.beforeCommit(pending.streamName, pending.events);
      }
    }
    return outcomes;
  }

  async readStream(streamName: string, options: ReadStreamOptions): Promise<RecordedEvent[]> {
    assertValidStreamName(streamName);
    assertValidMaxCount(options.maxCount);
    const backwards = options.direction === 'backwards';
    const from = options.fromRevision;
    const bindings: Knex.RawBinding[] = [streamName];
    let range = '';
    if (from !== undefined) {
      range = backwards ? ' AND revision <= ?' : ' AND revision >= ?';
      bindings.push(toSafeNumber(from, 'fromRevision'));
    }
    bindings.push(options.maxCount, streamName);
    // The existence check rides along in the same statement so an empty page can tell "no stream" apart.
    const result = await this.run((k) =>
      k.raw<{ rows: Array<EventRow & { stream_exists: boolean }> }>(
        `SELECT e.*, true AS stream_exists FROM (
           SELECT ${EVENT_COLUMNS} FROM events WHERE stream_name = ?${range}
           ORDER BY revision ${backwards ? 'DESC' : 'ASC'} LIMIT ?
         ) e
         UNION ALL
         SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, EXISTS (SELECT 1 FROM event_streams WHERE stream_name = ?)`,
        bindings,
      ),
    );
    const events = result.rows.filter((r) => r.position !== null);
    const marker = result.rows.find((r) => r.position === null);
    if (events.length === 0 && !marker?.stream_exists) throw new StreamNotFoundError(streamName);
    events.sort((a, b) => (Number(a.revision) - Number(b.revision)) * (backwards ? -1 : 1));
    return events.map(toRecordedEvent);
  }

  async readAll(options: ReadAllOptions): Promise<RecordedEvent[]> {
    assertValidMaxCount(options.maxCount);
    const backwards = options.direction === 'backwards';
    const filter = filterSql(options.filter);
    const bindings: Knex.RawBinding[] = [];
    let range = '';
    if (backwards && options.before !== undefined) {
      range = ' AND position < ?';
      bindings.push(toSafeNumber(options.before, 'before'));
    } else if (!backwards && options.after !== undefined) {
      range = ' AND position > ?';
      bindings.push(toSafeNumber(options.after, 'after'));
    }
    bindings.push(...filter.bindings, options.maxCount);
    const result = await this.run((k) =>
      k.raw<{ rows: EventRow[] }>(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE true${range}${filter.sql}
         ORDER BY position ${backwards ? 'DESC' : 'ASC'} LIMIT ?`,
        bindings,
      ),
    );
    return result.rows.map(toRecordedEvent);
  }

  subscribe(options: SubscribeOptions): Subscription {
    const subscription = new PostgresSubscription({
      knex: this.knex,
      after: options.after ?? -1n,
      filter: options.filter,
      // Two batches may be held (one read ahead), so each is at most half of maxBuffered.
      batchSize: Math.max(
        1,
        Math.min(
          this.settings.readBatchSize,
          Math.floor((options.maxBuffered ?? Number.MAX_SAFE_INTEGER) / 2),
        ),
      ),
      pollIntervalMs: this.settings.pollIntervalMs,
      mapError: mapDatabaseError,
      onClose: (s) => this.subscriptions.delete(s),
    });
    this.subscriptions.add(subscription);
    this.ensureListening();
    return subscription;
  }

  /** One LISTEN per store, shared by its subscriptions; polling covers the time before it is set up. */
  private ensureListening(): void {
    if (this.unlisten) return;
    this.unlisten = this.db.listen(EVENTS_CHANNEL, () => this.wakeSubscriptions());
    this.unlisten.catch(() => {
      // Polling keeps subscriptions live without NOTIFY; try LISTEN again with the next subscription.
      this.unlisten = undefined;
    });
  }

  private wakeSubscriptions(): void {
    for (const s of this.subscriptions) s.wake();
  }

  /** Counters since this instance started (for metrics and tests); attempts, not only commits. */
  stats(): PostgresEventStoreStats {
    return { ...this.counters };
  }

  async headPosition(): Promise<bigint> {
    const result = await this.run((k) =>
      k.raw<{ rows: Array<{ position: number }> }>('SELECT position FROM event_store_head WHERE id = 1'),
    );
    const row = result.rows[0];
    if (!row) throw new Error('event_store_head row is missing; run the migrations');
    return BigInt(row.position);
  }

  async ping(): Promise<void> {
    await this.run((k) => k.raw('SELECT 1 FROM event_store_head WHERE id = 1'));
  }

  /** Stops accepting appends, lets queued ones finish, ends subscriptions. Does not close the database. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.writing) await this.writing;
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    const unlisten = await this.unlisten?.catch(() => undefined);
    await unlisten?.();
  }

  private async run<T>(query: (k: Knex) => Promise<T>): Promise<T> {
    try {
      return await query(this.knex);
    } catch (error) {
      throw mapDatabaseError(error);
    }
  }
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EPIPE',
  '57P01',
  '57P03',
]);

/** Maps driver errors to the port's typed errors; anything unexpected passes through unchanged. */
export function mapDatabaseError(error: unknown): unknown {
  if (error instanceof EventStoreError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === '55P03' || code === '57014' || code === '25P03') {
    return new EventStoreDeadlineError(`event store: ${message}`, { cause: error });
  }
  if (
    (typeof code === 'string' && (CONNECTION_CODES.has(code) || code.startsWith('08'))) ||
    (error instanceof Error && error.name === 'KnexTimeoutError')
  ) {
    return new EventStoreUnavailableError(`event store unavailable: ${message}`, { cause: error });
  }
  return error;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
