/**
 * The emulator's in-memory transaction log, following EventStoreDB's semantics (not the project's port):
 *  - stream revisions start at 0; a missing stream's "current revision" is -1 (NoStream);
 *  - the commit decision is the one of EventStoreDB's IndexWriter.CheckCommit (see `decide`): idempotent
 *    writes are recognised by event id within the same stream only, and with `any` only from the first id;
 *  - every event is one record in the log with its own log position; as for implicit (non-explicit-transaction)
 *    writes in EventStoreDB since v20, an event's commit position equals its prepare position;
 *  - positions are byte offsets of the records, so they increase strictly but are not dense.
 */

export type Expected =
  | { kind: 'any' }
  | { kind: 'no_stream' }
  | { kind: 'stream_exists' }
  | { kind: 'revision'; revision: bigint };

export interface ProposedEvent {
  id: string;
  type: string;
  contentType: string;
  data: Uint8Array;
  customMetadata: Uint8Array;
}

export interface LogRecord {
  streamName: string;
  revision: bigint;
  id: string;
  type: string;
  contentType: string;
  /** 100-ns ticks since the Unix epoch, as EventStoreDB sends `created` over gRPC. */
  createdTicks: bigint;
  data: Uint8Array;
  customMetadata: Uint8Array;
  commitPosition: bigint;
  preparePosition: bigint;
}

export type AppendOutcome =
  | { kind: 'success'; currentRevision: bigint; commitPosition: bigint; preparePosition: bigint }
  | { kind: 'wrong_expected_version'; current: bigint | 'no_stream' };

/** Fixed per-record overhead, roughly what a prepare record header takes in a TFChunk. */
const RECORD_HEADER_BYTES = 84n;
/** A fresh EventStoreDB log does not start at 0 (epoch and system records come first). */
const FIRST_POSITION = 1_024n;

export function ticksFromDate(date: Date): bigint {
  return BigInt(date.getTime()) * 10_000n;
}

export class EmulatorLog {
  private readonly records: LogRecord[] = [];
  private readonly streams = new Map<string, LogRecord[]>();
  /** Event id -> records with that id. EventStoreDB keeps a bounded cache; this one is unbounded. */
  private readonly byId = new Map<string, LogRecord[]>();
  private nextPosition = FIRST_POSITION;
  private listeners = new Set<() => void>();

  constructor(private readonly now: () => Date = () => new Date()) {}

  get all(): readonly LogRecord[] {
    return this.records;
  }

  stream(streamName: string): readonly LogRecord[] | undefined {
    return this.streams.get(streamName);
  }

  currentRevision(streamName: string): bigint {
    const stream = this.streams.get(streamName);
    return stream ? BigInt(stream.length - 1) : -1n;
  }

  /** Called after every write; subscriptions use it to wake up. */
  onAppend(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  append(streamName: string, expected: Expected, events: ProposedEvent[]): AppendOutcome {
    const decision = this.decide(streamName, expected, events);
    const current = this.currentRevision(streamName);
    if (decision.kind === 'wrong_expected_version') {
      return { kind: 'wrong_expected_version', current: current === -1n ? 'no_stream' : current };
    }
    if (decision.kind === 'idempotent') {
      const stream = this.streams.get(streamName)!;
      const first = stream[Number(decision.first)]!;
      const last = stream[Number(decision.last)]!;
      return {
        kind: 'success',
        currentRevision: decision.last,
        commitPosition: last.commitPosition,
        preparePosition: first.preparePosition,
      };
    }
    if (events.length === 0) {
      // An empty append only checks the expectation; EventStoreDB answers with the current state.
      return { kind: 'success', currentRevision: current, commitPosition: -1n, preparePosition: -1n };
    }
    const createdTicks = ticksFromDate(this.now());
    const stream = this.streams.get(streamName) ?? [];
    const written: LogRecord[] = [];
    for (const e of events) {
      const position = this.nextPosition;
      const size =
        RECORD_HEADER_BYTES +
        BigInt(Buffer.byteLength(streamName) + Buffer.byteLength(e.type)) +
        BigInt(e.data.length + e.customMetadata.length);
      this.nextPosition += size;
      const record: LogRecord = {
        streamName,
        revision: BigInt(stream.length),
        id: e.id,
        type: e.type,
        contentType: e.contentType,
        createdTicks,
        data: e.data,
        customMetadata: e.customMetadata,
        commitPosition: position,
        preparePosition: position,
      };
      stream.push(record);
      this.records.push(record);
      const same = this.byId.get(e.id) ?? [];
      same.push(record);
      this.byId.set(e.id, same);
      written.push(record);
    }
    this.streams.set(streamName, stream);
    for (const listener of [...this.listeners]) listener();
    const first = written[0]!;
    const last = written[written.length - 1]!;
    // Like EventStoreDB's WriteEventsCompleted: the commit position of the last event, and the
    // transaction (first prepare) position as the prepare position.
    return {
      kind: 'success',
      currentRevision: last.revision,
      commitPosition: last.commitPosition,
      preparePosition: first.preparePosition,
    };
  }

  /**
   * EventStoreDB's commit check (IndexWriter.CheckCommit), reduced to what an in-memory log needs:
   *  - stream_exists on a missing stream: wrong expected version; otherwise treated as `any`;
   *  - `any` (or no_stream on a missing stream): if the first event id is already in this stream, every
   *    id must follow it consecutively (idempotent) or the write is a corrupted idempotency (reported as
   *    wrong expected version); if the first id is unknown in this stream, the write goes ahead;
   *  - exact/no_stream below the current revision: the ids must equal the events after the expected
   *    revision (idempotent), first mismatch -> wrong expected version, later mismatch -> corrupted;
   *  - above the current revision: wrong expected version; equal: write.
   */
  private decide(
    streamName: string,
    expected: Expected,
    events: ProposedEvent[],
  ):
    | { kind: 'write' }
    | { kind: 'idempotent'; first: bigint; last: bigint }
    | { kind: 'wrong_expected_version' } {
    const current = this.currentRevision(streamName);
    let expectedRevision: bigint | 'any';
    switch (expected.kind) {
      case 'any':
        expectedRevision = 'any';
        break;
      case 'stream_exists':
        if (current < 0n) return { kind: 'wrong_expected_version' };
        expectedRevision = 'any';
        break;
      case 'no_stream':
        expectedRevision = -1n;
        break;
      case 'revision':
        expectedRevision = expected.revision;
        break;
    }
    if (expectedRevision === 'any' || (expectedRevision === -1n && current === -1n)) {
      let first: bigint | undefined;
      let last: bigint | undefined;
      for (const [i, e] of events.entries()) {
        const found = (this.byId.get(e.id) ?? []).find((r) => r.streamName === streamName);
        if (!found) return i === 0 ? { kind: 'write' } : { kind: 'wrong_expected_version' };
        if (first === undefined) first = found.revision;
        else if (found.revision !== last! + 1n) return { kind: 'wrong_expected_version' };
        last = found.revision;
      }
      if (first === undefined || last === undefined) return { kind: 'write' };
      return { kind: 'idempotent', first, last };
    }
    if (expectedRevision < current) {
      const stream = this.streams.get(streamName)!;
      for (const [i, e] of events.entries()) {
        const at = stream[Number(expectedRevision) + 1 + i];
        if (at?.id === e.id) continue;
        return { kind: 'wrong_expected_version' };
      }
      if (events.length === 0) return { kind: 'write' };
      return {
        kind: 'idempotent',
        first: expectedRevision + 1n,
        last: expectedRevision + BigInt(events.length),
      };
    }
    if (expectedRevision > current) return { kind: 'wrong_expected_version' };
    return { kind: 'write' };
  }

  /** Index of the first record with position >= `position` (records are in position order). */
  indexAtOrAfter(position: bigint): number {
    let lo = 0;
    let hi = this.records.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.records[mid]!.commitPosition < position) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
