import type { Database } from '../db/database.js';
import type { EventStore, EventToAppend, RecordedEvent } from '../eventstore/port.js';
import { type ImportedEvent, importPostgresBatch, postgresImportHead } from '../eventstore/postgresImport.js';
import { canonicalJson, MAX_EVENTS_PER_APPEND } from '../eventstore/validation.js';
import type { ExportedEvent, ExportHeader } from './format.js';
import { checkExport, openExport } from './readExport.js';

/**
 * Loads an export file (format.ts) into an empty event store, in the file's order, keeping every
 * event's id, stream and stream revision, type, data and metadata; then reads the store back and
 * compares it with the file event by event. In three passes over the file, each in bounded memory:
 *
 *  1. check: the whole file parses, its positions increase and its SHA-256 is the trailer's; nothing is
 *     written before this passes (a truncated or altered file is refused whole);
 *  2. load: on Postgres (and PGlite) in batches of whole transactions written straight into the event
 *     tables, keeping `recorded_at` (postgresImport.ts); on EventStoreDB by ordinary appends (runs of one
 *     stream's consecutive events, each with its exact expected revision), one at a time to keep the order;
 *  3. verify: the store holds exactly the file's events, in its order.
 *
 * Positions in the target are the target's own (dense from 0 on Postgres, log offsets on EventStoreDB):
 * the file keeps the source's for audit, and since the order is kept, the n-th event of the file is the
 * n-th event of the store.
 *
 * A store that already holds events is refused, unless `resume` is set and what it holds is exactly the
 * beginning of this file (an import that was interrupted): it then continues after it.
 */

export type ImportPhase = 'checking' | 'comparing' | 'loading' | 'verifying';

export interface ImportProgress {
  phase: ImportPhase;
  /** Events of the file done in this phase. */
  done: number;
  /** Events in the file (0 while checking). */
  total: number;
}

export interface ImportOptions {
  store: EventStore;
  /** The database of a Postgres event store (required when store.kind is 'postgres'). */
  db?: Database;
  file: string;
  resume?: boolean;
  /** Events per transaction on Postgres (default 1000). */
  batchSize?: number;
  onProgress?: (progress: ImportProgress) => void;
  /** Test hook: called after each committed batch or append with the events loaded so far. */
  afterWrite?: (loaded: number) => void | Promise<void>;
}

export interface ImportResult {
  header: ExportHeader;
  events: number;
  /** Events the store already held from an interrupted import of the same file. */
  resumedAfter: number;
  /** The target store's head after the import. */
  head: bigint;
  sha256: string;
}

export class ImportRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImportRefusedError';
  }
}

/** Byte budget of one EventStoreDB append built from a run of events (its default limit is 1 MiB). */
const MAX_APPEND_BYTES = 512 * 1024;
const PROGRESS_EVERY = 500;

export async function importEvents(options: ImportOptions): Promise<ImportResult> {
  const { store, file } = options;
  if (store.kind === 'postgres' && !options.db)
    throw new Error('importEvents: a Postgres store needs its db');
  const progress = (phase: ImportPhase, done: number, total: number) =>
    options.onProgress?.({ phase, done, total });

  const check = await checkExport(file, (done) => progress('checking', done, 0));
  const total = check.events;
  const resumedAfter = await existingPrefix(store, file, options.resume ?? false, (done) =>
    progress('comparing', done, total),
  );

  const exported = await openExport(file);
  let loaded = 0;
  const events = exported.events();
  // Skip what the store already holds (compared above).
  for (; loaded < resumedAfter; loaded++) {
    const next = await events.next();
    if (next.done) break;
  }
  if (store.kind === 'postgres') {
    const db = options.db!;
    const batchSize = options.batchSize ?? 1_000;
    let head = await postgresImportHead(db);
    let batch: ImportedEvent[] = [];
    const flush = async () => {
      head = await importPostgresBatch(db, head, batch);
      loaded += batch.length;
      batch = [];
      progress('loading', loaded, total);
      await options.afterWrite?.(loaded);
    };
    for await (const event of events) {
      batch.push(event);
      if (batch.length >= batchSize) await flush();
    }
    if (batch.length > 0) await flush();
  } else {
    let run: ExportedEvent[] = [];
    let runBytes = 0;
    const flush = async () => {
      await appendRun(store, run);
      loaded += run.length;
      run = [];
      runBytes = 0;
      if (loaded % PROGRESS_EVERY < MAX_EVENTS_PER_APPEND) progress('loading', loaded, total);
      await options.afterWrite?.(loaded);
    };
    for await (const event of events) {
      const bytes = JSON.stringify(event.data).length + JSON.stringify(event.metadata).length;
      const joins =
        run.length > 0 &&
        run[0]!.streamName === event.streamName &&
        run.length < MAX_EVENTS_PER_APPEND &&
        runBytes + bytes <= MAX_APPEND_BYTES;
      if (run.length > 0 && !joins) await flush();
      run.push(event);
      runBytes += bytes;
    }
    if (run.length > 0) await flush();
    progress('loading', loaded, total);
  }

  await verifyAgainstFile(store, file, total, (done) => progress('verifying', done, total));
  return {
    header: check.header,
    events: total,
    resumedAfter,
    head: await store.headPosition(),
    sha256: check.trailer.sha256,
  };
}

async function appendRun(store: EventStore, run: readonly ExportedEvent[]): Promise<void> {
  const first = run[0]!;
  const last = run[run.length - 1]!;
  const events: EventToAppend[] = run.map((e) => ({
    id: e.id,
    type: e.type,
    data: e.data,
    metadata: e.metadata,
  }));
  const result = await store.append(first.streamName, events, {
    expectedRevision: first.revision === 0n ? 'no_stream' : first.revision - 1n,
  });
  if (result.nextExpectedRevision !== last.revision) {
    throw new Error(
      `import: stream ${first.streamName} is at revision ${result.nextExpectedRevision} after the append, the file says ${last.revision}`,
    );
  }
}

/** Every event of the store, in order, one page at a time. */
async function* storeEvents(store: EventStore, pageSize = 1_000): AsyncGenerator<RecordedEvent> {
  let after: bigint | undefined;
  for (;;) {
    const page = await store.readAll({ ...(after !== undefined ? { after } : {}), maxCount: pageSize });
    if (page.length === 0) return;
    yield* page;
    after = page[page.length - 1]!.position;
  }
}

function sameEvent(stored: RecordedEvent, exported: ExportedEvent, store: EventStore): string | null {
  if (stored.id !== exported.id) return `id ${stored.id}, the file has ${exported.id}`;
  if (stored.streamName !== exported.streamName)
    return `stream ${stored.streamName}, the file has ${exported.streamName}`;
  if (stored.revision !== exported.revision)
    return `revision ${stored.revision}, the file has ${exported.revision}`;
  if (stored.type !== exported.type) return `type ${stored.type}, the file has ${exported.type}`;
  if (canonicalJson(stored.data) !== canonicalJson(exported.data)) return 'other data';
  if (canonicalJson(stored.metadata) !== canonicalJson(exported.metadata)) return 'other metadata';
  // EventStoreDB sets `created` itself; Postgres keeps the recorded time.
  if (
    store.kind === 'postgres' &&
    stored.recordedAt.toISOString() !== new Date(exported.recordedAt).toISOString()
  ) {
    return `recorded at ${stored.recordedAt.toISOString()}, the file has ${exported.recordedAt}`;
  }
  return null;
}

/** How many events the store holds that are the file's first ones; refuses anything else. */
async function existingPrefix(
  store: EventStore,
  file: string,
  resume: boolean,
  onProgress: (done: number) => void,
): Promise<number> {
  const head = await store.headPosition();
  if (head < 0n) return 0;
  if (!resume) {
    throw new ImportRefusedError(
      `the target event store is not empty (head position ${head}): import loads into an empty store ` +
        '(to continue an interrupted import of this same file: --resume)',
    );
  }
  const fileEvents = (await openExport(file)).events();
  let matched = 0;
  try {
    for await (const stored of storeEvents(store)) {
      const next = await fileEvents.next();
      if (next.done) {
        throw new ImportRefusedError(
          `the store holds more events than the file (${matched}): it is not this file's import`,
        );
      }
      const difference = sameEvent(stored, next.value, store);
      if (difference) {
        throw new ImportRefusedError(
          `the store's event #${matched} (position ${stored.position}) has ${difference}: the store does not hold the beginning of this file`,
        );
      }
      matched++;
      if (matched % PROGRESS_EVERY === 0) onProgress(matched);
    }
  } finally {
    await fileEvents.return(undefined);
  }
  onProgress(matched);
  return matched;
}

async function verifyAgainstFile(
  store: EventStore,
  file: string,
  total: number,
  onProgress: (done: number) => void,
): Promise<void> {
  const fileEvents = (await openExport(file)).events();
  let n = 0;
  try {
    for await (const stored of storeEvents(store)) {
      const next = await fileEvents.next();
      if (next.done) throw new Error(`verify: the store holds more events than the file's ${total}`);
      const difference = sameEvent(stored, next.value, store);
      if (difference)
        throw new Error(`verify: the store's event #${n} (position ${stored.position}) has ${difference}`);
      n++;
      if (n % PROGRESS_EVERY === 0) onProgress(n);
    }
    if (n !== total) throw new Error(`verify: the store holds ${n} events, the file ${total}`);
  } finally {
    await fileEvents.return(undefined);
  }
  onProgress(n);
}
