import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import knexFactory, { type Knex } from 'knex';
import ClientPGLite from 'knex-pglite';
import pg from 'pg';
import {
  DEFAULT_PG_LISTENER_OPTIONS,
  type ListenState,
  NOTIFY_CHANNEL,
  PgListener,
  type PgListenerOptions,
} from './pgListener.js';

/**
 * One handle on the SQL database that holds the Postgres event store and the read models: real
 * PostgreSQL through `pg`, or PGlite (embedded, single connection). Everything above talks to `knex`;
 * LISTEN/NOTIFY goes through `listen`, which both backends support.
 *
 * PGlite is one session: knex is limited to one connection, so a transaction owns the database until it
 * ends. Never await another query through `db.knex` while holding a transaction open (it would wait
 * for itself); pass the transaction object down instead.
 */
export interface Database {
  readonly kind: 'postgres' | 'pglite';
  readonly knex: Knex;
  /**
   * Sends `sql` (one or more statements separated by semicolons, no placeholders: values are already
   * inlined as literals) as ONE simple-protocol message on one pooled connection, and returns each
   * statement's rows in order. Postgres runs such a message as a single implicit transaction: it
   * commits at the end of the message (or rolls back on the first error), so transaction-local settings
   * end with it. One round trip instead of BEGIN + statements + COMMIT through knex.
   */
  simpleQuery(sql: string): Promise<SqlRow[][]>;
  /** Runs one statement on a pooled connection: `withSession` for a single statement. */
  query<R = SqlRow>(statement: SqlStatement): Promise<R[]>;
  /**
   * Runs `fn` holding one connection of knex's pool (the same bound as every other query), without
   * knex's query builder. Statements are prepared by name on real Postgres (each connection plans a
   * name once and keeps it); PGlite's driver has no named statements and prepares each one unnamed.
   * A transaction is `BEGIN` ... `COMMIT` through the session; on PGlite nobody else can run a query
   * while the session holds its one connection.
   */
  withSession<T>(fn: (session: SqlSession) => Promise<T>): Promise<T>;
  /**
   * Subscribes to a NOTIFY channel; returns an unsubscribe function. `onState` hears when the
   * subscription is live ('listening': from now on every notification committed is delivered) and when
   * it is lost ('lost': the connection dropped, notifications until the next 'listening' are missed).
   * Callers that keep state derived from notifications must drop it on 'lost'.
   */
  listen(
    channel: string,
    onNotify: (payload: string) => void,
    onState?: (state: ListenState) => void,
  ): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export type SqlRow = Record<string, unknown>;

export type { ListenState } from './pgListener.js';

/**
 * One statement with `$1..$n` placeholders. `name` must always come with the same `text` (a connection
 * refuses a known name with other text), so every distinct text gets its own name.
 */
export interface SqlStatement {
  /** Omitted for rare statements (BEGIN, COMMIT): they go unprepared, keeping no plan. */
  name?: string;
  text: string;
  values: unknown[];
}

export interface SqlSession {
  query<R = SqlRow>(statement: SqlStatement): Promise<R[]>;
}

export type DatabaseTarget =
  | { kind: 'postgres'; url: string; poolMax?: number; listener?: PgListenerOptions }
  | {
      kind: 'pglite';
      dataDir?: string;
      /**
       * Starts an in-memory PGlite from an image made by `dumpDatabaseImage` instead of running initdb:
       * about a second instead of five (test/support/database.ts keeps one migrated image per run).
       */
      image?: Blob;
    };

const INT8_OID = 20;

/**
 * int8 never silently becomes a float: values within Number.MAX_SAFE_INTEGER become numbers, anything
 * larger throws (docs/architecture.md, invariant 9). Amounts and positions are bounded well below that.
 */
export function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`int8 value ${text} exceeds Number.MAX_SAFE_INTEGER; refusing to lose precision`);
  }
  return value;
}

pg.types.setTypeParser(INT8_OID, parseInt8);

const QUIET_KNEX_LOG = { warn() {}, error() {}, deprecate() {}, debug() {} };

/** knex's pool, as simpleQuery uses it: the same connections (and bound) as every other query. */
interface PooledClient<C> {
  acquireConnection(): Promise<C>;
  releaseConnection(connection: C): Promise<void>;
}

/**
 * Runs `fn` on a connection taken from knex's own pool (not a second pool), so the pool size bounds
 * these queries too and, on PGlite, the one session is never used by two callers at once (a knex
 * transaction holds the connection until it ends, so a message can never land inside it).
 */
async function withPooledConnection<C, T>(knex: Knex, fn: (connection: C) => Promise<T>): Promise<T> {
  const pool = knex.client as unknown as PooledClient<C>;
  const connection = await pool.acquireConnection();
  try {
    return await fn(connection);
  } finally {
    await pool.releaseConnection(connection);
  }
}

/** Both kinds of Database build their session members from how one connection runs a statement. */
function sessionMembers<C>(
  knex: Knex,
  run: (connection: C, statement: SqlStatement) => Promise<SqlRow[]>,
): Pick<Database, 'query' | 'withSession'> {
  const withSession = <T>(fn: (session: SqlSession) => Promise<T>): Promise<T> =>
    withPooledConnection<C, T>(knex, (connection) =>
      fn({ query: <R = SqlRow>(s: SqlStatement) => run(connection, s) as Promise<R[]> }),
    );
  return {
    withSession,
    query: <R = SqlRow>(statement: SqlStatement) => withSession((s) => s.query<R>(statement)),
  };
}

export async function openDatabase(target: DatabaseTarget): Promise<Database> {
  return target.kind === 'postgres'
    ? openPostgres(target.url, target.poolMax ?? 10, target.listener ?? DEFAULT_PG_LISTENER_OPTIONS)
    : openPglite(target.dataDir, target.image);
}

async function openPostgres(
  url: string,
  poolMax: number,
  listenerOptions: PgListenerOptions,
): Promise<Database> {
  const knex = knexFactory({
    client: 'pg',
    connection: { connectionString: url, connectionTimeoutMillis: 5_000, statement_timeout: 30_000 },
    pool: { min: 0, max: poolMax, acquireTimeoutMillis: 10_000, idleTimeoutMillis: 30_000 },
    acquireConnectionTimeout: 10_000,
    // knex would print connection errors to the console itself; they are thrown to callers anyway.
    log: QUIET_KNEX_LOG,
  });
  const listener = new PgListener(url, listenerOptions);

  return {
    kind: 'postgres',
    knex,
    simpleQuery: (sql) =>
      withPooledConnection<pg.Client, SqlRow[][]>(knex, async (connection) => {
        // No values array: pg sends a simple Query message, which may hold several statements.
        const result = (await connection.query(sql)) as
          | pg.QueryResult<SqlRow>
          | Array<pg.QueryResult<SqlRow>>;
        return (Array.isArray(result) ? result : [result]).map((r) => r.rows);
      }),
    ...sessionMembers<pg.Client>(knex, async (connection, s) => (await connection.query<SqlRow>(s)).rows),
    listen: (channel, onNotify, onState) => listener.listen(channel, onNotify, onState),
    async close() {
      await listener.close();
      await knex.destroy();
    },
  };
}

/** The whole data directory of an in-memory PGlite database, as a tar image for `openDatabase`'s `image`. */
export async function dumpDatabaseImage(db: Database): Promise<Blob> {
  const pglite = pgliteHandles.get(db);
  if (!pglite) throw new Error('dumpDatabaseImage needs a PGlite database');
  return pglite.dumpDataDir('none');
}

const pgliteHandles = new WeakMap<Database, PGlite>();

async function openPglite(dataDir: string | undefined, image: Blob | undefined): Promise<Database> {
  if (dataDir && image)
    throw new Error('a PGlite database starts from a data directory or an image, not both');
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  // One options object: PGlite ignores its second argument when the first is not a string, so
  // `new PGlite(undefined, options)` would drop the int8 parser of every in-memory database.
  const pglite = new PGlite({
    ...(dataDir ? { dataDir } : {}),
    ...(image ? { loadDataDir: image } : {}),
    parsers: { [INT8_OID]: (v: string) => parseInt8(v) },
  });
  await pglite.waitReady;
  const knex = knexFactory({
    client: ClientPGLite as unknown as typeof knexFactory.Client,
    connection: () => ({ pglite }),
  } as Knex.Config);
  const db: Database = {
    kind: 'pglite',
    knex,
    simpleQuery: (sql) =>
      withPooledConnection<PGlite, SqlRow[][]>(knex, async (connection) => {
        // exec() is PGlite's simple-protocol entry point: several statements, one implicit transaction.
        const results = await connection.exec(sql);
        return results.map((r) => r.rows as SqlRow[]);
      }),
    ...sessionMembers<PGlite>(
      knex,
      async (connection, s) => (await connection.query<SqlRow>(s.text, s.values)).rows,
    ),
    async listen(channel, onNotify, onState) {
      if (!NOTIFY_CHANNEL.test(channel)) throw new Error(`invalid NOTIFY channel ${channel}`);
      const unsubscribe = await pglite.listen(channel, onNotify);
      // In-process: once subscribed, nothing can be missed until close.
      onState?.('listening');
      return async () => unsubscribe();
    },
    async close() {
      await knex.destroy();
      if (!pglite.closed) await pglite.close();
    },
  };
  pgliteHandles.set(db, pglite);
  return db;
}
