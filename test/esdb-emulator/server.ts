import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { UUID } from '@eventstore/db-client/generated/shared_pb.js';
import type { AppendReq, AppendResp, ReadReq, ReadResp } from '@eventstore/db-client/generated/streams_pb.js';
import * as grpc from '@grpc/grpc-js';
import { EmulatorLog, type Expected, type LogRecord, type ProposedEvent } from './log.js';
import { sharedPb, streamsGrpc, streamsPb } from './protocol.js';

/**
 * A test-only gRPC server that speaks the part of EventStoreDB's `event_store.client.streams.Streams`
 * protocol that @eventstore/db-client 6.x uses for our adapter: Append, and Read for streams and `$all`
 * (reads and catch-up subscriptions with filters). See README.md for what it does not do. Not a product.
 */
export interface EsdbEmulatorOptions {
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** EventStoreDB's MaxAppendSize default is 1 MiB (sum of data and metadata bytes of one append). */
  maxAppendSizeBytes?: number;
  now?: () => Date;
  /** false: behave like a server before 23.10, which never sends `caught_up` on subscriptions. */
  caughtUpMessages?: boolean;
}

/** EventStoreDB's default checkpoint window for filtered subscriptions, multiplied by the client's interval. */
const CHECKPOINT_WINDOW_EVENTS = 32;
const HOST = '127.0.0.1';

interface ActiveSubscription {
  call: grpc.ServerWritableStream<ReadReq, Outgoing>;
  stop(): void;
}

type Matcher = (r: LogRecord) => boolean;
/** Read responses go out as messages or, for recorded events, as bytes serialized once per record. */
type Outgoing = ReadResp | Buffer;

/**
 * The Streams service with a read serializer that passes pre-serialized bytes through: every event is
 * delivered to several readers and subscribers, and protobuf encoding was most of the emulator's CPU.
 */
const streamsService = {
  ...streamsGrpc.StreamsService,
  read: {
    ...streamsGrpc.StreamsService.read,
    responseSerialize: (value: Outgoing): Buffer =>
      Buffer.isBuffer(value) ? value : streamsGrpc.StreamsService.read.responseSerialize(value),
  },
};
const serializedEvents = new WeakMap<LogRecord, Buffer>();

export class EsdbEmulator {
  readonly log: EmulatorLog;
  private server: grpc.Server | undefined;
  private boundPort = 0;
  private readonly maxAppendSizeBytes: number;
  private readonly subscriptions = new Set<ActiveSubscription>();
  private appendDelayMs = 0;
  private accessDenied = false;
  private notLeader = false;
  private readonly caughtUpMessages: boolean;
  private readonly pendingAppends = new Set<Promise<void>>();

  private constructor(options: EsdbEmulatorOptions) {
    this.log = new EmulatorLog(options.now);
    this.maxAppendSizeBytes = options.maxAppendSizeBytes ?? 1024 * 1024;
    this.caughtUpMessages = options.caughtUpMessages ?? true;
  }

  static async start(options: EsdbEmulatorOptions = {}): Promise<EsdbEmulator> {
    const emulator = new EsdbEmulator(options);
    await emulator.listen(options.port ?? 0);
    return emulator;
  }

  get port(): number {
    return this.boundPort;
  }

  /** A single-node connection string: the client connects directly, without gossip discovery. */
  get connectionString(): string {
    return `esdb://${HOST}:${this.boundPort}?tls=false`;
  }

  get activeSubscriptions(): number {
    return this.subscriptions.size;
  }

  // ----- fault hooks -------------------------------------------------------------------------------

  /** Ends every active subscription with the given status (default UNAVAILABLE, as on a node shutdown). */
  dropSubscriptions(
    code: grpc.status = grpc.status.UNAVAILABLE,
    details = 'Subscription dropped by server',
  ): number {
    const dropped = [...this.subscriptions];
    for (const s of dropped) {
      s.stop();
      // OK: the server completes the call normally, which a catch-up subscription must also survive.
      if (code === grpc.status.OK) s.call.end();
      else s.call.emit('error', rpcError(code, details));
    }
    return dropped.length;
  }

  /** Stops listening and kills open connections; the log is kept. Clients see UNAVAILABLE. */
  async goOffline(): Promise<void> {
    for (const s of this.subscriptions) s.stop();
    this.subscriptions.clear();
    const server = this.server;
    this.server = undefined;
    server?.forceShutdown();
  }

  /** Listens again on the same port. */
  async goOnline(): Promise<void> {
    if (this.server) return;
    await this.listen(this.boundPort);
  }

  /** Holds every append this long before committing it (the commit still happens, as on a slow node). */
  delayAppends(delayMs: number): void {
    this.appendDelayMs = delayMs;
  }

  /** Answers every call with PERMISSION_DENIED, as EventStoreDB does for a user without the right ACL. */
  denyAccess(denied: boolean): void {
    this.accessDenied = denied;
  }

  /** Resolves once every append that reached the server has been decided (delayed ones included). */
  async settled(): Promise<void> {
    while (this.pendingAppends.size > 0) await Promise.all([...this.pendingAppends]);
  }

  /**
   * Answers every call as a follower that requires the leader: NOT_FOUND with `exception: not-leader`
   * and the leader's endpoint (this same emulator), which makes the client reconnect there.
   */
  pretendNotLeader(on: boolean): void {
    this.notLeader = on;
  }

  private refusal(): grpc.ServerErrorResponse | undefined {
    if (this.accessDenied) return accessDeniedError();
    if (this.notLeader) {
      return rpcError(grpc.status.NOT_FOUND, 'Leader info available', {
        exception: 'not-leader',
        'leader-endpoint-host': HOST,
        'leader-endpoint-port': String(this.boundPort),
      });
    }
    return undefined;
  }

  async stop(): Promise<void> {
    await this.goOffline();
    await this.settled();
  }

  // ----- server ------------------------------------------------------------------------------------

  private async listen(port: number): Promise<void> {
    const server = new grpc.Server();
    const unimplemented = (_call: unknown, callback?: grpc.sendUnaryData<never>) => {
      const error = rpcError(grpc.status.UNIMPLEMENTED, 'Not implemented by the emulator');
      if (typeof callback === 'function') callback(error);
      else (_call as { emit(e: string, v: unknown): void }).emit('error', error);
    };
    server.addService(streamsService, {
      read: (call: grpc.ServerWritableStream<ReadReq, Outgoing>) => this.read(call),
      append: (
        call: grpc.ServerReadableStream<AppendReq, AppendResp>,
        callback: grpc.sendUnaryData<AppendResp>,
      ) => this.append(call, callback),
      delete: unimplemented,
      tombstone: unimplemented,
      // BatchAppend is only used when ServerFeatures advertises it; the emulator has no ServerFeatures
      // service (UNIMPLEMENTED), so the client falls back to Append, as it does with pre-21.10 servers.
      batchAppend: (call: grpc.ServerDuplexStream<unknown, unknown>) =>
        call.emit('error', rpcError(grpc.status.UNIMPLEMENTED, 'Not implemented by the emulator')),
    });
    this.boundPort = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${HOST}:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      );
    });
    this.server = server;
  }

  private append(
    call: grpc.ServerReadableStream<AppendReq, AppendResp>,
    callback: grpc.sendUnaryData<AppendResp>,
  ): void {
    let options: AppendReq.Options | undefined;
    const events: ProposedEvent[] = [];
    let sizeBytes = 0;
    let failed = false;
    const fail = (error: grpc.ServerErrorResponse) => {
      if (failed) return;
      failed = true;
      callback(error);
    };
    const refusal = this.refusal();
    if (refusal) {
      fail(refusal);
      return;
    }
    call.on('data', (req: AppendReq) => {
      if (failed) return;
      if (!options) {
        if (req.getContentCase() !== streamsPb.AppendReq.ContentCase.OPTIONS) {
          fail(rpcError(grpc.status.INVALID_ARGUMENT, 'The first append message must be the options'));
          return;
        }
        options = req.getOptions()!;
        if (streamNameOf(options.getStreamIdentifier()) === '') {
          fail(rpcError(grpc.status.INVALID_ARGUMENT, 'Stream name must not be empty'));
        }
        return;
      }
      if (req.getContentCase() !== streamsPb.AppendReq.ContentCase.PROPOSED_MESSAGE) {
        fail(rpcError(grpc.status.INVALID_ARGUMENT, 'Options may only be sent once, first'));
        return;
      }
      const message = req.getProposedMessage()!;
      const metadata = message.getMetadataMap();
      const type = metadata.get('type');
      const contentType = metadata.get('content-type');
      if (type === undefined || contentType === undefined) {
        fail(
          rpcError(grpc.status.INVALID_ARGUMENT, 'Required metadata properties are missing', {
            exception: 'missing-required-metadata-property',
            'required-metadata-properties': 'type,content-type',
          }),
        );
        return;
      }
      const id = parseUuid(message.getId());
      if (id === undefined) {
        fail(rpcError(grpc.status.INVALID_ARGUMENT, 'Event id must be a UUID'));
        return;
      }
      const data = message.getData_asU8();
      const customMetadata = message.getCustomMetadata_asU8();
      sizeBytes += data.length + customMetadata.length;
      if (sizeBytes > this.maxAppendSizeBytes) {
        fail(
          rpcError(
            grpc.status.INVALID_ARGUMENT,
            `Maximum Append Size of ${this.maxAppendSizeBytes} Exceeded.`,
            {
              exception: 'maximum-append-size-exceeded',
              'maximum-append-size': String(this.maxAppendSizeBytes),
            },
          ),
        );
        return;
      }
      events.push({ id, type, contentType, data, customMetadata });
    });
    call.on('error', () => {
      failed = true;
    });
    call.on('end', () => {
      const pending = (async () => {
        if (failed) return;
        if (!options) {
          fail(rpcError(grpc.status.INVALID_ARGUMENT, 'An append must start with its options'));
          return;
        }
        if (this.appendDelayMs > 0) await sleep(this.appendDelayMs);
        const streamName = streamNameOf(options.getStreamIdentifier());
        const expected = expectedOf(options);
        const outcome = this.log.append(streamName, expected, events);
        const resp = new streamsPb.AppendResp();
        if (outcome.kind === 'success') {
          const success = new streamsPb.AppendResp.Success();
          if (outcome.currentRevision < 0n) success.setNoStream(new sharedPb.Empty());
          else success.setCurrentRevision(outcome.currentRevision.toString());
          if (outcome.commitPosition < 0n) success.setNoPosition(new sharedPb.Empty());
          else {
            const position = new streamsPb.AppendResp.Position();
            position.setCommitPosition(outcome.commitPosition.toString());
            position.setPreparePosition(outcome.preparePosition.toString());
            success.setPosition(position);
          }
          resp.setSuccess(success);
        } else {
          const wrong = new streamsPb.AppendResp.WrongExpectedVersion();
          if (outcome.current === 'no_stream') {
            wrong.setCurrentNoStream(new sharedPb.Empty());
            wrong.setNoStream2060(new sharedPb.Empty());
          } else {
            wrong.setCurrentRevision(outcome.current.toString());
            wrong.setCurrentRevision2060(Number(outcome.current));
          }
          switch (expected.kind) {
            case 'any':
              wrong.setExpectedAny(new sharedPb.Empty());
              wrong.setAny2060(new sharedPb.Empty());
              break;
            case 'stream_exists':
              wrong.setExpectedStreamExists(new sharedPb.Empty());
              wrong.setStreamExists2060(new sharedPb.Empty());
              break;
            case 'no_stream':
              // The 20.6.0 fields have no "no stream" case; only the current field is set.
              wrong.setExpectedNoStream(new sharedPb.Empty());
              break;
            case 'revision':
              wrong.setExpectedRevision(expected.revision.toString());
              wrong.setExpectedRevision2060(Number(expected.revision));
              break;
          }
          resp.setWrongExpectedVersion(wrong);
        }
        callback(null, resp);
      })();
      this.pendingAppends.add(pending);
      void pending.finally(() => this.pendingAppends.delete(pending));
    });
  }

  private read(call: grpc.ServerWritableStream<ReadReq, Outgoing>): void {
    const fail = (error: grpc.ServerErrorResponse): void => {
      call.emit('error', error);
    };
    const refusal = this.refusal();
    if (refusal) {
      fail(refusal);
      return;
    }
    const options = call.request.getOptions();
    if (!options) {
      fail(rpcError(grpc.status.INVALID_ARGUMENT, 'Read options are required'));
      return;
    }
    const Opt = streamsPb.ReadReq.Options;
    const structuredIds = options.getUuidOption()?.hasStructured() ?? false;
    const backwards = options.getReadDirection() === Opt.ReadDirection.BACKWARDS;
    const countCase = options.getCountOptionCase();
    if (countCase === Opt.CountOptionCase.COUNT_OPTION_NOT_SET) {
      fail(rpcError(grpc.status.INVALID_ARGUMENT, 'Either count or subscription must be set'));
      return;
    }
    let matcher: Matcher;
    try {
      matcher = filterOf(options);
    } catch (error) {
      fail(rpcError(grpc.status.INVALID_ARGUMENT, (error as Error).message));
      return;
    }
    const toResp = (r: LogRecord): Outgoing => {
      if (structuredIds) return eventResp(r, true);
      let bytes = serializedEvents.get(r);
      if (!bytes) {
        bytes = Buffer.from(eventResp(r, false).serializeBinary());
        serializedEvents.set(r, bytes);
      }
      return bytes;
    };

    if (options.getStreamOptionCase() === Opt.StreamOptionCase.STREAM) {
      const streamOptions = options.getStream()!;
      const streamName = streamNameOf(streamOptions.getStreamIdentifier());
      if (streamName === '') {
        fail(rpcError(grpc.status.INVALID_ARGUMENT, 'Stream name must not be empty'));
        return;
      }
      const revisionCase = streamOptions.getRevisionOptionCase();
      if (countCase === Opt.CountOptionCase.SUBSCRIPTION) {
        // Stream subscriptions: start exclusive of the given revision, like EventStoreDB.
        const current = () => this.log.stream(streamName) ?? [];
        const start =
          revisionCase === Opt.StreamOptions.RevisionOptionCase.END
            ? current().length
            : revisionCase === Opt.StreamOptions.RevisionOptionCase.REVISION
              ? Number(BigInt(streamOptions.getRevision()) + 1n)
              : 0;
        this.subscribe(call, current, start, () => true, false, toResp);
        return;
      }
      const count = BigInt(options.getCount());
      const stream = this.log.stream(streamName);
      if (!stream || stream.length === 0) {
        // Since v20.10 a missing stream is a message, not an RPC error.
        const notFound = new streamsPb.ReadResp.StreamNotFound();
        notFound.setStreamIdentifier(streamOptions.getStreamIdentifier());
        const resp = new streamsPb.ReadResp();
        resp.setStreamNotFound(notFound);
        call.write(resp);
        call.end();
        return;
      }
      const out: LogRecord[] = [];
      const last = stream.length - 1;
      if (backwards) {
        let from = last;
        if (revisionCase === Opt.StreamOptions.RevisionOptionCase.REVISION) {
          from = Number(bigMin(BigInt(streamOptions.getRevision()), BigInt(last)));
        } else if (revisionCase === Opt.StreamOptions.RevisionOptionCase.START) from = 0;
        for (let i = from; i >= 0 && BigInt(out.length) < count; i--) out.push(stream[i]!);
      } else {
        let from = 0;
        if (revisionCase === Opt.StreamOptions.RevisionOptionCase.REVISION) {
          from = Number(bigMin(BigInt(streamOptions.getRevision()), BigInt(stream.length)));
        } else if (revisionCase === Opt.StreamOptions.RevisionOptionCase.END) from = stream.length;
        for (let i = from; i < stream.length && BigInt(out.length) < count; i++) out.push(stream[i]!);
      }
      void writeAll(call, out.map(toResp));
      return;
    }

    if (options.getStreamOptionCase() !== Opt.StreamOptionCase.ALL) {
      fail(rpcError(grpc.status.INVALID_ARGUMENT, 'Either stream or all must be set'));
      return;
    }
    const allOptions = options.getAll()!;
    const allCase = allOptions.getAllOptionCase();
    const records = this.log.all;
    let position: bigint | undefined;
    if (allCase === Opt.AllOptions.AllOptionCase.POSITION) {
      const p = allOptions.getPosition()!;
      position = BigInt(p.getCommitPosition());
      if (BigInt(p.getPreparePosition()) > position) {
        fail(rpcError(grpc.status.INVALID_ARGUMENT, 'Prepare position is after commit position'));
        return;
      }
    }
    if (countCase === Opt.CountOptionCase.SUBSCRIPTION) {
      // $all subscriptions start exclusive of the given position.
      let start = 0;
      if (allCase === Opt.AllOptions.AllOptionCase.END) start = records.length;
      else if (position !== undefined) start = this.log.indexAtOrAfter(position + 1n);
      const filtered = options.getFilterOptionCase() === Opt.FilterOptionCase.FILTER;
      const interval = filtered
        ? CHECKPOINT_WINDOW_EVENTS * Math.max(1, options.getFilter()!.getCheckpointintervalmultiplier())
        : 0;
      this.subscribe(call, () => this.log.all, start, matcher, filtered, toResp, interval);
      return;
    }
    // $all reads: forwards from a position is inclusive, backwards from a position is exclusive.
    const count = BigInt(options.getCount());
    const out: LogRecord[] = [];
    if (backwards) {
      let from = records.length - 1;
      if (position !== undefined) from = this.log.indexAtOrAfter(position) - 1;
      else if (allCase === Opt.AllOptions.AllOptionCase.START) from = -1;
      for (let i = from; i >= 0 && BigInt(out.length) < count; i--) {
        if (matcher(records[i]!)) out.push(records[i]!);
      }
    } else {
      let from = 0;
      if (position !== undefined) from = this.log.indexAtOrAfter(position);
      else if (allCase === Opt.AllOptions.AllOptionCase.END) from = records.length;
      for (let i = from; i < records.length && BigInt(out.length) < count; i++) {
        if (matcher(records[i]!)) out.push(records[i]!);
      }
    }
    void writeAll(call, out.map(toResp));
  }

  /**
   * One cursor over the log serves both catch-up and live delivery: it sends what is there, announces
   * caught-up the first time it reaches the end, then waits for the next append. Writes respect the
   * transport's backpressure, so a slow client holds the cursor back instead of growing a buffer.
   */
  private subscribe(
    call: grpc.ServerWritableStream<ReadReq, Outgoing>,
    records: () => readonly LogRecord[],
    startIndex: number,
    matcher: Matcher,
    sendCheckpoints: boolean,
    toResp: (r: LogRecord) => Outgoing,
    checkpointEvery = 0,
  ): void {
    let active = true;
    let wake: (() => void) | undefined;
    const unsubscribe = this.log.onAppend(() => wake?.());
    const subscription: ActiveSubscription = {
      call,
      stop: () => {
        active = false;
        unsubscribe();
        this.subscriptions.delete(subscription);
        wake?.();
      },
    };
    this.subscriptions.add(subscription);
    call.on('cancelled', subscription.stop);
    call.on('close', subscription.stop);
    call.on('error', subscription.stop);
    void (async () => {
      const confirmation = new streamsPb.ReadResp.SubscriptionConfirmation();
      confirmation.setSubscriptionId(randomUUID());
      const confirm = new streamsPb.ReadResp();
      confirm.setConfirmation(confirmation);
      await write(call, confirm);
      let index = startIndex;
      let scanned = 0;
      let lastScanned: LogRecord | undefined;
      let caughtUp = false;
      while (active) {
        const current = records();
        while (active && index < current.length) {
          const r = current[index++]!;
          lastScanned = r;
          if (matcher(r)) await write(call, toResp(r));
          if (sendCheckpoints && ++scanned >= checkpointEvery) {
            scanned = 0;
            await write(call, checkpointResp(r));
          }
        }
        if (!active) break;
        if (!caughtUp) {
          caughtUp = true;
          if (sendCheckpoints && scanned > 0 && lastScanned) {
            scanned = 0;
            await write(call, checkpointResp(lastScanned));
          }
          if (this.caughtUpMessages) {
            const resp = new streamsPb.ReadResp();
            resp.setCaughtUp(new streamsPb.ReadResp.CaughtUp());
            await write(call, resp);
          }
        }
        if (index >= records().length) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
        }
      }
    })().catch(() => subscription.stop());
  }
}

// ----- helpers ---------------------------------------------------------------------------------------

function rpcError(
  code: grpc.status,
  details: string,
  headers: Record<string, string> = {},
): grpc.ServerErrorResponse {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
  return Object.assign(new Error(details), { code, details, metadata });
}

function accessDeniedError(): grpc.ServerErrorResponse {
  return rpcError(grpc.status.PERMISSION_DENIED, 'Access Denied', { exception: 'access-denied' });
}

function streamNameOf(identifier: { getStreamName_asU8(): Uint8Array } | undefined): string {
  return identifier ? Buffer.from(identifier.getStreamName_asU8()).toString('utf8') : '';
}

function expectedOf(options: AppendReq.Options): Expected {
  const Case = streamsPb.AppendReq.Options.ExpectedStreamRevisionCase;
  switch (options.getExpectedStreamRevisionCase()) {
    case Case.REVISION:
      return { kind: 'revision', revision: BigInt(options.getRevision()) };
    case Case.NO_STREAM:
      return { kind: 'no_stream' };
    case Case.STREAM_EXISTS:
      return { kind: 'stream_exists' };
    default:
      return { kind: 'any' };
  }
}

function filterOf(options: ReadReq.Options): Matcher {
  if (options.getFilterOptionCase() !== streamsPb.ReadReq.Options.FilterOptionCase.FILTER) return () => true;
  const filter = options.getFilter()!;
  const Case = streamsPb.ReadReq.Options.FilterOptions.FilterCase;
  const onStream = filter.getFilterCase() === Case.STREAM_IDENTIFIER;
  const expression = onStream ? filter.getStreamIdentifier() : filter.getEventType();
  if (!expression) throw new Error('A filter needs a stream identifier or an event type expression');
  const prefixes = expression.getPrefixList();
  const regex = expression.getRegex();
  // EventStoreDB: prefixes win when both are given; a regex is matched anywhere (Regex.IsMatch).
  const test =
    prefixes.length > 0
      ? (value: string) => prefixes.some((p) => value.startsWith(p))
      : regex
        ? (
            (re: RegExp) => (value: string) =>
              re.test(value)
          )(new RegExp(regex))
        : () => true;
  return (r) => test(onStream ? r.streamName : r.type);
}

function eventResp(r: LogRecord, structuredIds: boolean): ReadResp {
  const recorded = new streamsPb.ReadResp.ReadEvent.RecordedEvent();
  recorded.setId(toUuid(r.id, structuredIds));
  const identifier = new sharedPb.StreamIdentifier();
  identifier.setStreamName(Buffer.from(r.streamName, 'utf8'));
  recorded.setStreamIdentifier(identifier);
  recorded.setStreamRevision(r.revision.toString());
  recorded.setPreparePosition(r.preparePosition.toString());
  recorded.setCommitPosition(r.commitPosition.toString());
  const metadata = recorded.getMetadataMap();
  metadata.set('type', r.type);
  metadata.set('content-type', r.contentType);
  metadata.set('created', r.createdTicks.toString());
  recorded.setCustomMetadata(r.customMetadata);
  recorded.setData(r.data);
  const event = new streamsPb.ReadResp.ReadEvent();
  event.setEvent(recorded);
  // Since v22.6 the $all position is filled in for stream reads too (events outside explicit transactions).
  event.setCommitPosition(r.commitPosition.toString());
  const resp = new streamsPb.ReadResp();
  resp.setEvent(event);
  return resp;
}

function checkpointResp(r: LogRecord): ReadResp {
  const checkpoint = new streamsPb.ReadResp.Checkpoint();
  checkpoint.setCommitPosition(r.commitPosition.toString());
  checkpoint.setPreparePosition(r.preparePosition.toString());
  const resp = new streamsPb.ReadResp();
  resp.setCheckpoint(checkpoint);
  return resp;
}

function toUuid(id: string, structured: boolean): UUID {
  const uuid = new sharedPb.UUID();
  if (!structured) {
    uuid.setString(id);
    return uuid;
  }
  const hex = id.replace(/-/g, '');
  const bits = new sharedPb.UUID.Structured();
  bits.setMostSignificantBits(BigInt.asIntN(64, BigInt(`0x${hex.slice(0, 16)}`)).toString());
  bits.setLeastSignificantBits(BigInt.asIntN(64, BigInt(`0x${hex.slice(16)}`)).toString());
  uuid.setStructured(bits);
  return uuid;
}

const UUID_TEXT = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

function parseUuid(uuid: UUID | undefined): string | undefined {
  if (!uuid) return undefined;
  if (uuid.hasStructured()) {
    const bits = uuid.getStructured()!;
    const hi = BigInt.asUintN(64, BigInt(bits.getMostSignificantBits())).toString(16).padStart(16, '0');
    const lo = BigInt.asUintN(64, BigInt(bits.getLeastSignificantBits())).toString(16).padStart(16, '0');
    const hex = hi + lo;
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
  const text = uuid.getString();
  return UUID_TEXT.test(text) ? text.toLowerCase() : undefined;
}

function bigMin(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/** Writes one message, waiting for the transport to drain when its buffer is full (or the call ends). */
function write(call: grpc.ServerWritableStream<ReadReq, Outgoing>, message: Outgoing): Promise<void> {
  if (call.destroyed || call.writableEnded) return Promise.resolve();
  if (call.write(message)) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      call.off('drain', done);
      call.off('close', done);
      resolve();
    };
    call.on('drain', done);
    call.on('close', done);
  });
}

async function writeAll(
  call: grpc.ServerWritableStream<ReadReq, Outgoing>,
  messages: Outgoing[],
): Promise<void> {
  for (const m of messages) await write(call, m);
  call.end();
}
