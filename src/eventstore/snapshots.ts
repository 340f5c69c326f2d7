import type { Database } from '../db/database.js';
import { toSafeNumber } from './postgresRows.js';

/**
 * Snapshots of aggregate state stored beside the streams (docs/architecture.md, "Flat cost for
 * long-lived streams"). A snapshot is a cache of a fold, never a source of truth: it names the stream,
 * the kind of state (the decider and its snapshot version), the revision it reflects and the id of the
 * event at that revision, so a reader can check that the stream still holds that event there before
 * trusting it (a store restored, moved or imported elsewhere has other ids or none). Dropping every
 * snapshot at any time is safe; the next command folds from the start and writes new ones.
 *
 * On Postgres/PGlite and on EventStoreDB alike the snapshots live in the SQL database (the read
 * models' database, which every deployment has), table `stream_snapshots`.
 */
export interface StoredSnapshot {
  streamName: string;
  /** What the state is and which snapshot version wrote it, e.g. `wallet.v1.3f2a9c1e`. */
  kind: string;
  /** Last revision folded into `state`. */
  revision: bigint;
  /** Id of the event at `revision`: the check that the snapshot belongs to this stream. */
  eventId: string;
  /** The encoded state and id window (src/commands/snapshots.ts). */
  payload: string;
}

export interface SnapshotStore {
  /** The snapshot of the stream if there is one of this kind. */
  read(streamName: string, kind: string): Promise<StoredSnapshot | undefined>;
  /** Stores the snapshot unless one of the same kind at a later revision is stored already. */
  write(snapshot: StoredSnapshot): Promise<void>;
}

export class MemorySnapshotStore implements SnapshotStore {
  private readonly byStream = new Map<string, StoredSnapshot>();
  writes = 0;

  async read(streamName: string, kind: string): Promise<StoredSnapshot | undefined> {
    const found = this.byStream.get(streamName);
    return found?.kind === kind ? found : undefined;
  }

  async write(snapshot: StoredSnapshot): Promise<void> {
    const current = this.byStream.get(snapshot.streamName);
    if (current && current.kind === snapshot.kind && current.revision >= snapshot.revision) return;
    this.writes++;
    this.byStream.set(snapshot.streamName, { ...snapshot });
  }

  /** Test hook: forget every snapshot (always safe). */
  clear(): void {
    this.byStream.clear();
  }
}

interface SnapshotRow {
  kind: string;
  revision: number;
  event_id: string;
  payload: string;
}

const READ_SNAPSHOT = {
  name: 'stream_snapshot_read',
  text: 'SELECT kind, revision, event_id::text AS event_id, payload FROM stream_snapshots WHERE stream_name = $1 AND kind = $2',
};

// One row per stream: a snapshot of another kind (a new decider version) replaces the old one; one of
// the same kind only moves forward.
const WRITE_SNAPSHOT = {
  name: 'stream_snapshot_write',
  text: `INSERT INTO stream_snapshots AS s (stream_name, kind, revision, event_id, payload, written_at)
    VALUES ($1, $2, $3, $4, $5, now())
    ON CONFLICT (stream_name) DO UPDATE
      SET kind = excluded.kind, revision = excluded.revision, event_id = excluded.event_id,
          payload = excluded.payload, written_at = excluded.written_at
      WHERE s.kind <> excluded.kind OR s.revision < excluded.revision`,
};

export class PostgresSnapshotStore implements SnapshotStore {
  constructor(private readonly db: Database) {}

  async read(streamName: string, kind: string): Promise<StoredSnapshot | undefined> {
    const [row] = await this.db.query<SnapshotRow>({ ...READ_SNAPSHOT, values: [streamName, kind] });
    if (!row) return undefined;
    return {
      streamName,
      kind: row.kind,
      revision: BigInt(row.revision),
      eventId: row.event_id,
      payload: row.payload,
    };
  }

  async write(snapshot: StoredSnapshot): Promise<void> {
    await this.db.query({
      ...WRITE_SNAPSHOT,
      values: [
        snapshot.streamName,
        snapshot.kind,
        toSafeNumber(snapshot.revision, 'revision'),
        snapshot.eventId,
        snapshot.payload,
      ],
    });
  }
}
