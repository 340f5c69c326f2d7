import { randomUUID } from 'node:crypto';
import {
  type AllStreamResolvedEvent,
  END,
  EventStoreDBClient,
  eventTypeFilter,
  jsonEvent,
  START,
  StreamNotFoundError,
  streamNameFilter,
  WrongExpectedVersionError,
} from '@eventstore/db-client';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedPb, streamsGrpc, streamsPb } from './protocol.js';
import { EsdbEmulator } from './server.js';

/**
 * The emulator speaks EventStoreDB's semantics to the real client (not the project's port semantics,
 * which the adapter adds on top): these tests pin down the behaviour the adapter relies on.
 */
let emulator: EsdbEmulator;
let client: EventStoreDBClient;

beforeAll(async () => {
  emulator = await EsdbEmulator.start();
  client = EventStoreDBClient.connectionString(emulator.connectionString);
});
afterAll(async () => {
  await client?.dispose();
  await emulator?.stop();
});

const stream = () => `emu-${randomUUID().slice(0, 8)}`;
const ev = (type: string, data: Record<string, number | string> = {}, id: string = randomUUID()) =>
  jsonEvent({ id, type, data, metadata: { by: 'test' } });

async function readAllOf<E>(read: AsyncIterable<E>): Promise<E[]> {
  const out: E[] = [];
  for await (const e of read) out.push(e);
  return out;
}

describe('append', () => {
  it('numbers revisions from 0; positions strictly increase, are not dense, and commit == prepare per event', async () => {
    const s = stream();
    const before = Date.now();
    const result = await client.appendToStream(s, [ev('A'), ev('B'), ev('C')], {
      expectedRevision: 'no_stream',
    });
    const events = (await readAllOf(client.readStream(s, { maxCount: 10 }))).map((r) => r.event!);
    expect(events.map((e) => e.revision)).toEqual([0n, 1n, 2n]);
    const positions = events.map((e) => e.position!);
    expect(positions.every((p) => p.commit === p.prepare)).toBe(true);
    expect(positions[1]!.commit - positions[0]!.commit).toBeGreaterThan(1n);
    expect(positions[2]!.commit).toBeGreaterThan(positions[1]!.commit);
    // The append answers with the last event's commit position and the first event's (transaction) prepare.
    expect(result.position).toEqual({ commit: positions[2]!.commit, prepare: positions[0]!.prepare });
    expect(result.nextExpectedRevision).toBe(2n);
    expect(events[0]!.created.getTime()).toBeGreaterThanOrEqual(before - 1);
    expect(events[0]!.created.getTime()).toBeLessThanOrEqual(Date.now() + 1);
    expect(events[0]!.metadata).toEqual({ by: 'test' });
  });

  it('checks expectations like EventStoreDB', async () => {
    const s = stream();
    const wrong = (p: Promise<unknown>) => expect(p).rejects.toBeInstanceOf(WrongExpectedVersionError);
    await wrong(client.appendToStream(s, ev('A'), { expectedRevision: 'stream_exists' }));
    await wrong(client.appendToStream(s, ev('A'), { expectedRevision: 0n }));
    await client.appendToStream(s, ev('A'), { expectedRevision: 'no_stream' });
    await wrong(client.appendToStream(s, ev('A'), { expectedRevision: 'no_stream' }));
    const error = await client.appendToStream(s, ev('A'), { expectedRevision: 5n }).catch((e: unknown) => e);
    expect(error).toMatchObject({ actualVersion: 0n, expectedVersion: 5n });
    await client.appendToStream(s, ev('B'), { expectedRevision: 0n });
    await client.appendToStream(s, ev('C'), { expectedRevision: 'stream_exists' });
    await client.appendToStream(s, ev('D'), { expectedRevision: 'any' });
    expect(emulator.log.currentRevision(s)).toBe(3n);
  });

  it('is idempotent by event id within a stream, at the same expected revision or with any', async () => {
    const s = stream();
    const events = [ev('A', { n: 1 }), ev('B', { n: 2 })];
    const first = await client.appendToStream(s, events, { expectedRevision: 'no_stream' });
    await client.appendToStream(s, ev('C'), { expectedRevision: 1n });
    expect(await client.appendToStream(s, events, { expectedRevision: 'no_stream' })).toEqual(first);
    expect(await client.appendToStream(s, events, { expectedRevision: 'any' })).toEqual(first);
    // EventStoreDB compares ids only: the same id with other data is still "the same" write.
    const changed = [ev('A', { n: 99 }, events[0]!.id), ev('B', { n: 2 }, events[1]!.id)];
    expect(await client.appendToStream(s, changed, { expectedRevision: 'no_stream' })).toEqual(first);
    expect(emulator.log.currentRevision(s)).toBe(2n);
    // Some ids known and others not: a corrupted idempotency, reported as wrong expected version.
    await expect(
      client.appendToStream(s, [events[1]!, ev('D')], { expectedRevision: 'any' }),
    ).rejects.toBeInstanceOf(WrongExpectedVersionError);
    // Ids are not global: the same id in another stream is a new event there.
    const other = stream();
    await client.appendToStream(other, events[0]!, { expectedRevision: 'any' });
    expect(emulator.log.currentRevision(other)).toBe(0n);
  });
});

describe('read', () => {
  it('reports a missing stream with the stream-not-found message', async () => {
    const s = stream();
    await expect(readAllOf(client.readStream(s, { maxCount: 1 }))).rejects.toBeInstanceOf(
      StreamNotFoundError,
    );
  });

  it('reads $all forwards inclusive of the position and backwards exclusive of it', async () => {
    const s = stream();
    await client.appendToStream(s, [ev('A'), ev('B'), ev('C')], { expectedRevision: 'no_stream' });
    const all = (await readAllOf(client.readStream(s, { maxCount: 3 }))).map((r) => r.event!);
    const from = all[1]!.position!;
    const forwards = await readAllOf(client.readAll({ fromPosition: from, maxCount: 2 }));
    expect(forwards.map((r) => r.event!.id)).toEqual([all[1]!.id, all[2]!.id]);
    const backwards = await readAllOf(
      client.readAll({ fromPosition: from, direction: 'backwards', maxCount: 1 }),
    );
    expect(backwards.map((r) => r.event!.id)).toEqual([all[0]!.id]);
    const last = await readAllOf(client.readAll({ fromPosition: END, direction: 'backwards', maxCount: 1 }));
    expect(last[0]!.event!.position).toEqual(
      emulator.log.all.at(-1) && {
        commit: emulator.log.all.at(-1)!.commitPosition,
        prepare: emulator.log.all.at(-1)!.preparePosition,
      },
    );
  });
});

describe('subscribeToAll', () => {
  it('starts after the given position, filters, checkpoints and says when it caught up', async () => {
    const prefix = `${stream()}-`;
    const type = `T${randomUUID().slice(0, 8)}`;
    await client.appendToStream(`${prefix}1`, [ev(type), ev('Other'), ev(type)], {
      expectedRevision: 'no_stream',
    });
    const [firstEvent] = await readAllOf(client.readStream(`${prefix}1`, { maxCount: 1 }));
    const checkpoints: bigint[] = [];
    const byPrefix = client.subscribeToAll({
      fromPosition: firstEvent!.event!.position!,
      filter: streamNameFilter({
        prefixes: [prefix],
        checkpointReached: (_s, p) => void checkpoints.push(p.commit),
      }),
    });
    const byType = client.subscribeToAll({
      fromPosition: START,
      filter: eventTypeFilter({ regex: `^${type}$` }),
    });
    const revisions = (subscription: typeof byPrefix, count: number) =>
      new Promise<bigint[]>((resolve) => {
        const out: bigint[] = [];
        subscription.on('data', (r: AllStreamResolvedEvent) => {
          out.push(r.event!.revision);
          if (out.length === count) resolve(out);
        });
      });
    const caughtUp = new Promise<void>((resolve) => byPrefix.once('caughtUp', () => resolve()));
    expect(await revisions(byPrefix, 2)).toEqual([1n, 2n]);
    expect(await revisions(byType, 2)).toEqual([0n, 2n]);
    await caughtUp;
    // A filtered subscription checkpoints what it has searched (here: once, on reaching the end).
    expect(checkpoints.length).toBeGreaterThan(0);
    await byPrefix.unsubscribe();
    await byType.unsubscribe();
  });

  it('sends caughtUp after the history and then live events', async () => {
    const s = stream();
    await client.appendToStream(s, [ev('A')], { expectedRevision: 'no_stream' });
    const subscription = client.subscribeToAll({
      fromPosition: START,
      filter: streamNameFilter({ prefixes: [s] }),
    });
    const order: string[] = [];
    const caughtUp = new Promise<void>((resolve) =>
      subscription.once('caughtUp', () => {
        order.push('caughtUp');
        resolve();
      }),
    );
    const iterator = subscription[Symbol.asyncIterator]();
    order.push((await iterator.next()).value.event.type);
    await caughtUp;
    await client.appendToStream(s, [ev('Live')], { expectedRevision: 0n });
    order.push((await iterator.next()).value.event.type);
    expect(order).toEqual(['A', 'caughtUp', 'Live']);
    await subscription.unsubscribe();
  });
});

describe('subscribeToStream', () => {
  it('starts after the given revision and goes live', async () => {
    const s = stream();
    await client.appendToStream(s, [ev('A'), ev('B'), ev('C')], { expectedRevision: 'no_stream' });
    const subscription = client.subscribeToStream(s, { fromRevision: 0n });
    const iterator = subscription[Symbol.asyncIterator]();
    const types = [(await iterator.next()).value.event.type, (await iterator.next()).value.event.type];
    await client.appendToStream(s, [ev('D')], { expectedRevision: 2n });
    types.push((await iterator.next()).value.event.type);
    expect(types).toEqual(['B', 'C', 'D']);
    await subscription.unsubscribe();
  });
});

describe('malformed requests get the status EventStoreDB sends', () => {
  let raw: InstanceType<typeof streamsGrpc.StreamsClient>;
  beforeAll(() => {
    raw = new streamsGrpc.StreamsClient(`127.0.0.1:${emulator.port}`, grpc.credentials.createInsecure());
  });
  afterAll(() => raw?.close());

  function append(
    messages: InstanceType<typeof streamsPb.AppendReq>[],
  ): Promise<grpc.ServiceError | undefined> {
    return new Promise((resolve) => {
      const call = raw.append((error) => resolve(error ?? undefined));
      for (const m of messages) call.write(m);
      call.end();
    });
  }
  function options(name: string) {
    const o = new streamsPb.AppendReq.Options();
    const id = new sharedPb.StreamIdentifier();
    id.setStreamName(Buffer.from(name));
    o.setStreamIdentifier(id);
    o.setAny(new sharedPb.Empty());
    const req = new streamsPb.AppendReq();
    req.setOptions(o);
    return req;
  }
  function proposed(metadata: Record<string, string>) {
    const m = new streamsPb.AppendReq.ProposedMessage();
    const uuid = new sharedPb.UUID();
    uuid.setString(randomUUID());
    m.setId(uuid);
    for (const [k, v] of Object.entries(metadata)) m.getMetadataMap().set(k, v);
    m.setData(Buffer.from('{}'));
    const req = new streamsPb.AppendReq();
    req.setProposedMessage(m);
    return req;
  }

  it('append without options first: INVALID_ARGUMENT', async () => {
    const error = await append([proposed({ type: 'A', 'content-type': 'application/json' })]);
    expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('proposed message without type: INVALID_ARGUMENT with missing-required-metadata-property', async () => {
    const s = stream();
    const error = await append([options(s), proposed({ 'content-type': 'application/json' })]);
    expect(error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error?.metadata.get('exception')).toEqual(['missing-required-metadata-property']);
    expect(emulator.log.stream(s)).toBeUndefined();
  });

  it('read without options: INVALID_ARGUMENT; BatchAppend and ServerFeatures: UNIMPLEMENTED', async () => {
    const readError = await new Promise<grpc.ServiceError>((resolve) => {
      const call = raw.read(new streamsPb.ReadReq());
      call.on('error', resolve);
      call.on('data', () => undefined);
    });
    expect(readError.code).toBe(grpc.status.INVALID_ARGUMENT);
    const batchError = await new Promise<grpc.ServiceError>((resolve) => {
      const call = raw.batchAppend();
      call.on('error', resolve);
      call.on('data', () => undefined);
      call.end();
    });
    expect(batchError.code).toBe(grpc.status.UNIMPLEMENTED);
  });
});
