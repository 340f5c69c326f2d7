import type { Knex } from 'knex';
import type { Database, SqlSession, SqlStatement } from '../db/database.js';
import { InvariantViolation, invariant } from '../domain/errors.js';
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
import {
  assertValidFilter,
  assertValidMaxCount,
  assertValidStreamName,
  validateAppend,
} from './validation.js';

/** NOTIFY channel woken (after commit) with the new head position by every append transaction. */
export const EVENTS_CHANNEL = 'ledger_events';

export interface PostgresEventStoreOptions {
  /** Appends waiting for the writer; beyond this, append fails fast with EventStoreUnavailableError. */
  maxQueuedAppends?: number;
  /** Bounds on one group-commit transaction (at least one append always goes, whatever its size). */
  maxGroupAppends?: number;
  maxGroupEvents?: number;
  maxGroupBytes?: number;
  /**
   * Write attempts that read without the lock and write only if the head did not move (two round trips)
   * before a group takes the lock first and then reads (three); 0 always locks first.
   */
  optimisticAttempts?: number;
  /** Waiting for the head row lock (another process appending) longer than this fails the group. */
  lockTimeoutMs?: number;
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
  /** Group writes that found the head moved (another process committed since the read) and re-planned. */
  stateRereads: number;
  /** Groups whose transaction failed and whose appends were retried one by one. */
  groupsSplit: number;
  /** Groups written in one round trip from this process's own record of stream revisions. */
  cachedWrites: number;
  /** Cached attempts refused under the lock (someone else wrote, or a stream/id was not new). */
  cacheMisses: number;
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

/**
 * The head and the id of the event at it, then the group's stream revisions and already-stored events,
 * from one snapshot; bindings: stream names (text[]), ids (uuid[]). Every lookup is one of the
 * migration's event_store_* functions, whose plans are index lookups whatever the planner's statistics
 * say (migrations/20261204031000_event_store_index_lookups.ts): this statement is prepared once per
 * connection and would otherwise keep a plan chosen while `events` was small.
 */
const STATE_SQL = `SELECT 'head' AS kind, NULL::text AS stream_name, NULL::bigint AS revision,
         event_store_event_id_at(h.position)::text AS id, h.position,
         NULL::text AS type, NULL::jsonb AS data
  FROM event_store_head h WHERE h.id = 1
  UNION ALL
  SELECT 'stream' AS kind, s.stream_name, s.revision, NULL::text AS id, NULL::bigint AS position,
         NULL::text AS type, NULL::jsonb AS data
  FROM event_store_stream_revisions($1::text[]) s
  UNION ALL
  SELECT 'event', e.stream_name, e.revision, e.id::text, e.position, e.type, e.data
  FROM event_store_events_with_ids($2::uuid[]) e`;

interface StateRow {
  kind: 'head' | 'stream' | 'event';
  stream_name: string | null;
  revision: number | null;
  /** For the head row: the id of the event at the head (null for an empty store). */
  id: string | null;
  /** For the head row: the head as of the statement's snapshot. */
  position: number | null;
  type: string | null;
  data: JsonObject | null;
}

/**
 * The write of a planned group, one statement: lock the head row, and only if it still is the plan's
 * head (position $2 and the event id $3 there) and none of the ids ($4) or streams ($5) the plan
 * assumed new exist, insert the events ($6), set the stream revisions ($7) and move the head to $8;
 * $1 is the lock_timeout. Returns the new head's row when it wrote, no row otherwise. The checks are
 * index lookups whatever the statistics say, as in STATE_SQL.
 */
const WRITE_PLAN_SQL = `WITH locked AS (
    SELECT position, set_config('lock_timeout', $1, true) AS lock_timeout
    FROM event_store_head WHERE id = 1 FOR UPDATE
  ), go AS (
    SELECT 1 FROM locked WHERE position = $2
      AND event_store_event_id_at(locked.position) IS NOT DISTINCT FROM $3::uuid
      AND NOT event_store_any_event_with_id($4::uuid[])
      AND NOT event_store_any_stream($5::text[])
  ), inserted AS (
    INSERT INTO events (position, stream_name, revision, id, type, data, metadata)
    SELECT x.position, x.stream_name, x.revision, x.id, x.type, x.data, x.metadata
    FROM jsonb_to_recordset($6::jsonb)
      AS x(position bigint, stream_name text, revision bigint, id uuid, type text, data jsonb, metadata jsonb)
    WHERE EXISTS (SELECT 1 FROM go)
  ), streams AS (
    INSERT INTO event_streams (stream_name, revision)
    SELECT s.stream_name, s.revision FROM jsonb_to_recordset($7::jsonb) AS s(stream_name text, revision bigint)
    WHERE EXISTS (SELECT 1 FROM go)
    ON CONFLICT (stream_name) DO UPDATE SET revision = excluded.revision
  ), moved AS (
    UPDATE event_store_head SET position = $8::bigint WHERE id = 1 AND EXISTS (SELECT 1 FROM go) RETURNING position
  )
  SELECT position, pg_notify('${EVENTS_CHANNEL}', position::text) FROM moved`;

const BEGIN: SqlStatement = { text: 'BEGIN ISOLATION LEVEL READ COMMITTED', values: [] };
const COMMIT: SqlStatement = { text: 'COMMIT', values: [] };
const ROLLBACK: SqlStatement = { text: 'ROLLBACK', values: [] };

type ReadStreamRow = EventRow & { stream_exists: boolean };

/**
 * The stream read; bindings: stream name, direction, start revision (null: the stream's end in that
 * direction), max count. The page comes from event_store_stream_page, an index range scan whatever the
 * statistics say (see STATE_SQL). The existence check rides along in the same statement so an empty
 * page can tell "no stream" apart.
 */
const READ_STREAM_STATEMENT = {
  name: 'event_store_read_stream',
  text: `SELECT e.*, true AS stream_exists FROM (
       SELECT ${EVENT_COLUMNS} FROM event_store_stream_page($1::text, $2::boolean, $3::bigint, $4::bigint)
     ) e
     UNION ALL
     SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, event_store_any_stream(ARRAY[$1::text])`,
};

/** One event by id in one stream, an index lookup whatever the statistics say (see STATE_SQL). */
const FIND_EVENT_STATEMENT = {
  name: 'event_store_find_event',
  text: `SELECT ${EVENT_COLUMNS} FROM event_store_event_by_id($1::uuid) WHERE stream_name = $2`,
};

/** Event ids are UUIDs on this store (the column's type); anything else cannot be stored here. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A missing stream is an ordinary answer on the hold path (a new booking's stream is read before its
 * first append), and the port reports it by rejection. The error is built without capturing a stack:
 * its meaning is its type and stream name, nothing reads its stack, and capturing one was measured at 1-2%
 * of a hold's CPU. The limit is restored before anything else can run (this is synchronous).
 */
function streamNotFound(streamName: string): StreamNotFoundError {
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new StreamNotFoundError(streamName);
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

const DEFAULTS = {
  maxQueuedAppends: 10_000,
  maxGroupAppends: 256,
  maxGroupEvents: 5_000,
  maxGroupBytes: 16 * 1024 * 1024,
  optimisticAttempts: 3,
  lockTimeoutMs: 10_000,
  pollIntervalMs: 1_000,
  readBatchSize: 1_000,
};

/**
 * Event store on Postgres (or PGlite). The hot statements (stream read, group state, group write, the
 * locked path's transaction) skip knex's query builder and go through Database.query/withSession:
 * prepared once per connection on Postgres, on the same bounded pool; the rest goes through knex.
 *
 * Positions are dense and assigned in commit order: every write locks the one-row `event_store_head`
 * (SELECT ... FOR UPDATE), takes positions head+1.., writes the events, moves the head and commits; the
 * next writer (in this or any other process) gets the lock only after that commit is visible. So the
 * committed events are always a gap-free prefix of positions and a reader of `position > checkpoint`
 * never skips one that commits late.
 *
 * Serializing costs throughput, which group commit buys back: concurrent append calls of this process
 * queue up (bounded) and one writer takes them in groups (bounded) into a single write, deciding each
 * append on its own (appendRules.decideAppend) so one conflict does not fail the others. The writer is
 * the only code that writes, which also keeps PGlite (one connection) safe. Statement timeouts come from
 * the database handle (database.ts); the lock wait is bounded here by lockTimeoutMs.
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
    cachedWrites: 0,
    cacheMisses: 0,
  };
  /** Last revision of streams this process wrote or read, valid while the head is `cacheHead`. */
  private readonly revisionCache = new Map<string, bigint>();
  private cacheHead: HeadVersion | undefined;

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
   * Commits one group. Results are settled only after COMMIT (or rollback), so nobody sees a success
   * that did not commit. If the write itself fails and the group had several appends, each is retried
   * alone once, so one poisonous append cannot fail its neighbours; the retry is safe because event ids
   * are deterministic (a write that did commit replays as the original result).
   */
  private async writeGroup(group: PendingAppend[], splitOnFailure: boolean): Promise<void> {
    let outcomes: Outcome[];
    try {
      outcomes = await this.commitGroup(group);
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

  /**
   * Three ways to commit a group, cheapest first:
   *  1. cached (one round trip): when this process wrote last, plan against its own record of the
   *     revisions of the streams it touched (other streams assumed new, ids assumed unused) and write
   *     only if, under the head row lock, the head is still the one after our last commit and no stream
   *     or id assumed new exists. The head is compared as a version, its position together with the id
   *     of the event there: any foreign write moves the position, and a database that forgot commits
   *     (a crash under asynchronous commit, a failover to an asynchronous standby, a restore) and grew
   *     back to the same position holds another event there (ids are unique), so a stale record cannot
   *     slip by even then.
   *  2. optimistic (two round trips): read the group's state and the head from one snapshot without the
   *     lock, decide, write only if the head has not moved since that snapshot.
   *  3. locked (after optimisticAttempts losses to other processes): lock, then read, then write.
   * Each write statement is its own transaction (unless a beforeCommit hook needs one held open), so
   * the lock is held until commit and positions follow commit order.
   */
  private async commitGroup(group: PendingAppend[]): Promise<Outcome[]> {
    const cached = await this.tryCachedWrite(group);
    if (cached) return cached;
    for (let attempt = 0; attempt < this.settings.optimisticAttempts; attempt++) {
      const state = await this.db.query<StateRow>(stateStatement(group));
      const head = headOf(state);
      this.absorbState(state, head);
      const plan = planGroup(group, ...stateMaps(state), head);
      if (plan.rows.length === 0) return plan.outcomes;
      if (await this.write(plan, NO_CHECKS)) {
        this.rememberCommit(plan);
        return plan.outcomes;
      }
      this.counters.stateRereads++;
    }
    const plan = await this.transaction((session) => this.commitGroupLocked(session, group));
    if (plan.rows.length > 0) this.rememberCommit(plan);
    return plan.outcomes;
  }

  private async tryCachedWrite(group: PendingAppend[]): Promise<Outcome[] | undefined> {
    if (this.cacheHead === undefined) return undefined;
    const current = new Map<string, bigint>();
    const absentStreams: string[] = [];
    for (const name of new Set(group.map((p) => p.streamName))) {
      const revision = this.revisionCache.get(name);
      if (revision === undefined) absentStreams.push(name);
      else current.set(name, revision);
    }
    const plan = planGroup(group, current, new Map(), this.cacheHead);
    if (plan.rows.length === 0) return undefined;
    const ids = group.flatMap((p) => p.events.map((e) => e.id));
    if (!(await this.write(plan, { ids, absentStreams }))) {
      this.counters.cacheMisses++;
      return undefined;
    }
    this.counters.cachedWrites++;
    this.rememberCommit(plan);
    return plan.outcomes;
  }

  /** Takes stream revisions read at `head` into the cache, dropping it first if anyone else wrote. */
  private absorbState(rows: StateRow[], head: HeadVersion): void {
    if (!sameHead(this.cacheHead, head)) {
      this.revisionCache.clear();
      this.cacheHead = head;
    }
    for (const r of rows)
      if (r.kind === 'stream') this.revisionCache.set(r.stream_name!, BigInt(r.revision!));
  }

  private rememberCommit(plan: GroupPlan): void {
    if (this.revisionCache.size + plan.touched.length > MAX_CACHED_STREAMS) this.revisionCache.clear();
    for (const t of plan.touched) this.revisionCache.set(t.stream_name, BigInt(t.revision));
    const last = plan.rows[plan.rows.length - 1]!;
    this.cacheHead = { position: last.position, eventId: last.id };
  }

  /** Runs writePlan, inside a transaction held open for the beforeCommit test hook when there is one. */
  private async write(plan: GroupPlan, checks: WriteChecks): Promise<boolean> {
    const beforeCommit = this.options.beforeCommit;
    if (!beforeCommit) return this.db.withSession((session) => this.writePlan(session, plan, checks));
    return this.transaction(async (session) => {
      const ok = await this.writePlan(session, plan, checks);
      if (ok) for (const p of plan.written) await beforeCommit(p.streamName, p.events);
      return ok;
    });
  }

  /**
   * `fn` inside one read-committed transaction on one pooled connection: committed if it returns,
   * rolled back if it throws. A failed ROLLBACK means the connection is gone (which ends the
   * transaction too), so the original error is the one reported.
   */
  private transaction<T>(fn: (session: SqlSession) => Promise<T>): Promise<T> {
    return this.db.withSession(async (session) => {
      await session.query(BEGIN);
      let result: T;
      try {
        result = await fn(session);
      } catch (error) {
        await session.query(ROLLBACK).catch(() => undefined);
        throw error;
      }
      await session.query(COMMIT);
      return result;
    });
  }

  /**
   * Pessimistic path: lock the head row, then read the state in a new statement, whose snapshot includes
   * every commit made before we got the lock.
   */
  private async commitGroupLocked(session: SqlSession, group: PendingAppend[]): Promise<GroupPlan> {
    await session.query({
      name: 'event_store_lock_head',
      text: `SELECT position, set_config('lock_timeout', $1, true) AS lock_timeout
       FROM event_store_head WHERE id = 1 FOR UPDATE`,
      values: [`${this.settings.lockTimeoutMs}ms`],
    });
    const state = await session.query<StateRow>(stateStatement(group));
    const head = headOf(state);
    this.absorbState(state, head);
    const plan = planGroup(group, ...stateMaps(state), head);
    if (plan.rows.length === 0) return plan;
    if (!(await this.writePlan(session, plan, NO_CHECKS))) {
      throw new Error('event_store_head moved while this transaction held its lock; invariant broken');
    }
    if (this.options.beforeCommit) {
      for (const p of plan.written) await this.options.beforeCommit(p.streamName, p.events);
    }
    return plan;
  }

  /**
   * One statement: lock the head row, and only if it still is `plan.head` (position and the event at
   * it) write the events, the stream revisions and the new head, and queue the NOTIFY (Postgres delivers
   * it at commit). The event at an unmoved head committed before this statement's snapshot, so the
   * snapshot sees it; a head that moved during the lock wait fails the position check. set_config runs in
   * the locking scan's projection, before the lock is requested, so lock_timeout bounds that wait.
   * Returns false (nothing written) when another writer committed since the plan's snapshot, or when
   * an event id or stream that `checks` says the plan assumed new exists.
   */
  private async writePlan(session: SqlSession, plan: GroupPlan, checks: WriteChecks): Promise<boolean> {
    const moved = await session.query({
      name: 'event_store_write_plan',
      text: WRITE_PLAN_SQL,
      values: [
        `${this.settings.lockTimeoutMs}ms`,
        plan.head.position,
        plan.head.eventId,
        checks.ids,
        checks.absentStreams,
        JSON.stringify(plan.rows),
        JSON.stringify(plan.touched),
        plan.rows[plan.rows.length - 1]!.position,
      ],
    });
    if (moved.length === 0) return false;
    this.counters.appendsWritten += plan.written.length;
    this.counters.eventsWritten += plan.rows.length;
    return true;
  }

  async readStream(streamName: string, options: ReadStreamOptions): Promise<RecordedEvent[]> {
    assertValidStreamName(streamName);
    assertValidMaxCount(options.maxCount);
    const backwards = options.direction === 'backwards';
    const from = options.fromRevision;
    const values: unknown[] = [
      streamName,
      backwards,
      from === undefined ? null : toSafeNumber(from, 'fromRevision'),
      options.maxCount,
    ];
    let rows: ReadStreamRow[];
    try {
      rows = await this.db.query<ReadStreamRow>({ ...READ_STREAM_STATEMENT, values });
    } catch (error) {
      throw mapDatabaseError(error);
    }
    const events = rows.filter((r) => r.position !== null);
    const marker = rows.find((r) => r.position === null);
    if (events.length === 0 && !marker?.stream_exists) throw streamNotFound(streamName);
    events.sort((a, b) => (Number(a.revision) - Number(b.revision)) * (backwards ? -1 : 1));
    return events.map(toRecordedEvent);
  }

  async findEvent(streamName: string, eventId: string): Promise<RecordedEvent | undefined> {
    assertValidStreamName(streamName);
    if (!UUID.test(eventId)) return undefined;
    let rows: EventRow[];
    try {
      rows = await this.db.query<EventRow>({ ...FIND_EVENT_STATEMENT, values: [eventId, streamName] });
    } catch (error) {
      throw mapDatabaseError(error);
    }
    const row = rows[0];
    return row ? toRecordedEvent(row) : undefined;
  }

  async readAll(options: ReadAllOptions): Promise<RecordedEvent[]> {
    assertValidMaxCount(options.maxCount);
    assertValidFilter(options.filter);
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
    assertValidFilter(options.filter);
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

/**
 * node-postgres reports a connection lost under a query (the socket closed: the network, a proxy, or
 * the server process went away) with one of these messages and no SQLSTATE; knex prefixes the SQL, so
 * they are matched at the end of the message. Without them such an append reached callers as an
 * untyped Error although the port promises EventStoreUnavailableError (retry: a write that did commit
 * replays).
 */
const LOST_CONNECTION_MESSAGES = [
  'Connection terminated unexpectedly',
  'Connection terminated',
  'Connection terminated due to connection timeout',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
];

/** Maps driver errors to the port's typed errors; anything unexpected passes through unchanged. */
export function mapDatabaseError(error: unknown): unknown {
  if (error instanceof EventStoreError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === '55P03' || code === '57014' || code === '25P03') {
    return new EventStoreDeadlineError(`event store: ${message}`, { cause: error });
  }
  if (code === '23505' && (error as { constraint?: unknown }).constraint === 'events_pkey') {
    // Positions are taken only under the head row lock, above the head: a taken one means the events
    // table holds rows above event_store_head (a restore or a hand edit of one without the other).
    const detail = (error as { detail?: unknown }).detail;
    return new InvariantViolation(
      `event store: events above event_store_head (${String(detail ?? message)}); the head row and the events table disagree, appends refused`,
    );
  }
  if (
    (typeof code === 'string' && (CONNECTION_CODES.has(code) || code.startsWith('08'))) ||
    (error instanceof Error && error.name === 'KnexTimeoutError') ||
    (code === undefined && LOST_CONNECTION_MESSAGES.some((m) => message.endsWith(m)))
  ) {
    return new EventStoreUnavailableError(`event store unavailable: ${message}`, { cause: error });
  }
  return error;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Streams above this many are forgotten (all at once; forgetting is always safe, only slower). */
const MAX_CACHED_STREAMS = 50_000;

/** What a plan assumed new and the write must confirm under the lock (bound as SQL arrays). */
interface WriteChecks {
  ids: string[];
  absentStreams: string[];
}
const NO_CHECKS: WriteChecks = { ids: [], absentStreams: [] };

/**
 * What the store looked like when a plan was made: the head position and the id of the event at it
 * (null for an empty store). Positions alone can repeat if the database loses commits; ids cannot.
 */
interface HeadVersion {
  position: number;
  eventId: string | null;
}

function sameHead(a: HeadVersion | undefined, b: HeadVersion): boolean {
  return a !== undefined && a.position === b.position && a.eventId === b.eventId;
}

interface GroupPlan {
  /** The head the plan was decided against; the write happens only if it is still the head. */
  head: HeadVersion;
  outcomes: Outcome[];
  rows: WrittenRow[];
  written: PendingAppend[];
  touched: Array<{ stream_name: string; revision: number }>;
}

function stateStatement(group: PendingAppend[]): SqlStatement {
  const streamNames = [...new Set(group.map((p) => p.streamName))];
  const ids = group.flatMap((p) => p.events.map((e) => e.id));
  return {
    name: 'event_store_group_state',
    text: STATE_SQL,
    values: [streamNames, ids],
  };
}

function headOf(rows: StateRow[]): HeadVersion {
  const row = rows.find((r) => r.kind === 'head');
  if (row?.position === null || row?.position === undefined)
    throw new Error('event_store_head row is missing; run the migrations');
  invariant(
    (row.position === -1) === (row.id === null),
    `event_store_head is at ${row.position} but the event there is ${row.id ?? 'missing'}`,
  );
  return { position: row.position, eventId: row.id };
}

function stateMaps(stateRows: StateRow[]): [Map<string, bigint>, Map<string, StoredEventRef>] {
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
  return [current, known];
}

/**
 * Decides every append of the group in queue order against the given state (copied, not changed) plus
 * the appends before it in the group (appendRules.decideAppend): a conflict or idempotency violation
 * fails only that append.
 */
function planGroup(
  group: PendingAppend[],
  storedRevisions: ReadonlyMap<string, bigint>,
  storedEvents: ReadonlyMap<string, StoredEventRef>,
  head: HeadVersion,
): GroupPlan {
  const current = new Map(storedRevisions);
  const known = new Map(storedEvents);
  let nextPosition = BigInt(head.position) + 1n;
  const rows: WrittenRow[] = [];
  const written: PendingAppend[] = [];
  const outcomes = group.map((pending): Outcome => {
    const existing = new Map<string, StoredEventRef>();
    for (const e of pending.events) {
      const found = known.get(e.id);
      if (found) existing.set(e.id, found);
    }
    let decision: ReturnType<typeof decideAppend>;
    try {
      decision = decideAppend(
        pending.streamName,
        pending.events,
        pending.expected,
        current.get(pending.streamName) ?? 'no_stream',
        existing,
      );
    } catch (error) {
      if (error instanceof EventStoreError) return { ok: false, error };
      throw error;
    }
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
  });
  const touched = [...new Set(written.map((p) => p.streamName))].map((name) => ({
    stream_name: name,
    revision: toSafeNumber(current.get(name)!, 'revision'),
  }));
  return { head, outcomes, rows, written, touched };
}
