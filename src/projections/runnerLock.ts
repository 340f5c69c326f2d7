import type { Database } from '../db/database.js';

/**
 * "Exactly one active runner per projection." On Postgres: a session-level advisory lock held on a
 * dedicated connection taken out of the pool for the runner's lifetime; when the holding process dies its
 * session ends and the lock frees itself, so a waiting runner in another process takes over.
 *
 * On PGlite the database is one in-process session owned by one process (its data directory cannot be
 * opened twice), so cross-process exclusion cannot arise; the lock is an in-process one keyed by the
 * Database handle, with the same semantics for several runners inside that process.
 *
 * Either way the lock is an efficiency measure, not the correctness one: every batch also compares and
 * advances the checkpoint under a row lock (ledgerProjection.applyBatch), so even two writers could
 * never apply an event twice.
 */
export interface RunnerLock {
  /** Waits until the lock is held (true) or `shouldStop()` turns true (false). */
  acquire(shouldStop: () => boolean): Promise<boolean>;
  /** False once the session holding the lock is gone. */
  isHeld(): boolean;
  release(): Promise<void>;
}

export interface RunnerLockOptions {
  /** How often a waiting runner retries the lock (bounded wait between tries). */
  pollMs: number;
}

const ADVISORY_NAMESPACE = 7_245_010; // first key of pg_advisory_lock(int, int): projections

export function createRunnerLock(db: Database, name: string, options: RunnerLockOptions): RunnerLock {
  return db.kind === 'postgres' ? new AdvisoryLock(db, name, options) : new InProcessLock(db, name, options);
}

interface RawConnection {
  query(sql: string, params?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }>;
  on(event: 'error' | 'end', fn: () => void): void;
  removeListener(event: 'error' | 'end', fn: () => void): void;
}

class AdvisoryLock implements RunnerLock {
  private conn: RawConnection | undefined;
  /** This lock's listeners on `conn`, removed when the connection goes back to the pool. */
  private onLost: (() => void) | undefined;
  private held = false;

  constructor(
    private readonly db: Database,
    private readonly name: string,
    private readonly options: RunnerLockOptions,
  ) {}

  async acquire(shouldStop: () => boolean): Promise<boolean> {
    if (this.held) return true;
    while (!shouldStop()) {
      if (!this.conn) {
        const conn = (await this.db.knex.client.acquireConnection()) as RawConnection;
        const onLost = () => this.lost(conn);
        conn.on('error', onLost);
        conn.on('end', onLost);
        this.conn = conn;
        this.onLost = onLost;
      }
      const result = await this.conn.query('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [
        ADVISORY_NAMESPACE,
        this.name,
      ]);
      if (result.rows[0]?.ok === true) {
        this.held = true;
        return true;
      }
      await sleep(this.options.pollMs);
    }
    return false;
  }

  isHeld(): boolean {
    return this.held;
  }

  /** The session is gone (and with it the lock): drop the connection so the next acquire opens a new one. */
  private lost(conn: RawConnection): void {
    if (this.conn !== conn) return;
    this.held = false;
    this.detach(conn);
    // knex marks a connection that errored as disposed and destroys it instead of reusing it.
    Promise.resolve(this.db.knex.client.releaseConnection(conn)).catch(() => undefined);
  }

  /** Pooled connections outlive this lock's use of them: leave no listener behind on them. */
  private detach(conn: RawConnection): void {
    if (this.onLost) {
      conn.removeListener('error', this.onLost);
      conn.removeListener('end', this.onLost);
    }
    this.conn = undefined;
    this.onLost = undefined;
  }

  async release(): Promise<void> {
    const conn = this.conn;
    if (!conn) return;
    this.detach(conn);
    if (this.held) {
      await conn
        .query('SELECT pg_advisory_unlock($1, hashtext($2))', [ADVISORY_NAMESPACE, this.name])
        .catch(() => undefined);
    }
    this.held = false;
    await this.db.knex.client.releaseConnection(conn);
  }
}

const inProcessHolders = new WeakMap<Database, Map<string, InProcessLock>>();

class InProcessLock implements RunnerLock {
  private held = false;
  constructor(
    private readonly db: Database,
    private readonly name: string,
    private readonly options: RunnerLockOptions,
  ) {}

  async acquire(shouldStop: () => boolean): Promise<boolean> {
    let holders = inProcessHolders.get(this.db);
    if (!holders) {
      holders = new Map();
      inProcessHolders.set(this.db, holders);
    }
    while (!shouldStop()) {
      const holder = holders.get(this.name);
      if (!holder || holder === this) {
        holders.set(this.name, this);
        this.held = true;
        return true;
      }
      await sleep(this.options.pollMs);
    }
    return false;
  }

  isHeld(): boolean {
    return this.held;
  }

  async release(): Promise<void> {
    const holders = inProcessHolders.get(this.db);
    if (holders?.get(this.name) === this) holders.delete(this.name);
    this.held = false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
