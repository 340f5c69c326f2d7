import { describe, expect, it } from 'vitest';
import { CommandHandler, type CommandHandlerOptions } from '../../src/commands/commandHandler.js';
import type { CommandContext } from '../../src/commands/context.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';
import type { EventStore, ReadStreamOptions, RecordedEvent } from '../../src/eventstore/port.js';
import {
  MemorySnapshotStore,
  type SnapshotStore,
  type StoredSnapshot,
} from '../../src/eventstore/snapshots.js';
import { type JarCommand, jarDecider, jarHandlerOptions } from './jarDecider.js';

/**
 * The command handler's snapshots, id window and byte-bounded cache (docs/architecture.md, "Flat cost
 * for long-lived streams"), on the jar decider; the wallet's property test is
 * snapshots.property.unit.test.ts.
 */
const clock = () => new Date('2026-01-01T00:00:00.000Z');
const ctx = (key: string): CommandContext => ({
  tenantId: 't1',
  actor: { id: 'u1', role: 'student' },
  idempotencyKey: key,
  correlationId: `corr-${key}`,
  causationId: `cause-${key}`,
});
const STREAM = 'jar-t1.j1';
const jarKind = (version: number) => (decider: unknown) =>
  decider === jarDecider ? `jar.v${version}` : undefined;

function handlerOf(store: EventStore, options: Partial<CommandHandlerOptions> = {}): CommandHandler {
  return new CommandHandler({ ...jarHandlerOptions, store, clock, snapshotKind: jarKind(1), ...options });
}

const deposit = (handler: CommandHandler, amount: number, key: string, stream = STREAM) =>
  handler.handle(jarDecider, stream, { type: 'Deposit', amount } satisfies JarCommand, ctx(key), {
    commandType: 'Deposit',
  });

/** Records where each stream read started. */
class ReadRecordingStore extends MemoryEventStore {
  reads: Array<bigint | undefined> = [];
  override readStream(streamName: string, options: ReadStreamOptions): Promise<RecordedEvent[]> {
    this.reads.push(options.fromRevision);
    return super.readStream(streamName, options);
  }
}

/** Lets the background snapshot writes settle. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('CommandHandler snapshots', () => {
  it('a cold load starts from the snapshot and reads only the events after it', async () => {
    const store = new ReadRecordingStore();
    const snapshots = new MemorySnapshotStore();
    const first = handlerOf(store, { snapshots, snapshotEveryEvents: 4 });
    for (let i = 0; i < 10; i++) await deposit(first, 1, `k${i}`);
    await settle();
    expect(snapshots.writes).toBe(2); // at revisions 3 and 7
    store.reads = [];
    const cold = handlerOf(store, { snapshots, snapshotEveryEvents: 4 });
    expect(await cold.load(jarDecider, STREAM)).toEqual({ state: { balance: 10, events: 10 }, revision: 9n });
    // The snapshot's own revision (to check its event id), then nothing after the tail.
    expect(store.reads).toEqual([7n]);
    expect(cold.stats()).toMatchObject({ snapshotLoads: 1, snapshotMismatches: 0 });
  });

  it('a snapshot whose event is not in the stream (another store) is ignored and the stream folded', async () => {
    const snapshots = new MemorySnapshotStore();
    const original = new MemoryEventStore();
    const writer = handlerOf(original, { snapshots, snapshotEveryEvents: 2 });
    for (let i = 0; i < 4; i++) await deposit(writer, 5, `k${i}`);
    await settle();
    // Same stream name, other events (a store restored elsewhere): the snapshot's event id is not there.
    const other = new MemoryEventStore();
    const elsewhere = handlerOf(other, { snapshots, snapshotEveryEvents: 100 });
    for (let i = 0; i < 4; i++) await deposit(elsewhere, 1, `other${i}`);
    const cold = handlerOf(other, { snapshots, snapshotEveryEvents: 100 });
    expect((await cold.load(jarDecider, STREAM)).state).toEqual({ balance: 4, events: 4 });
    expect(cold.stats()).toMatchObject({ snapshotLoads: 0, snapshotMismatches: 1 });
  });

  it('a snapshot of another kind (a changed decider) is never read', async () => {
    const store = new MemoryEventStore();
    const snapshots = new MemorySnapshotStore();
    const v1 = handlerOf(store, { snapshots, snapshotEveryEvents: 2 });
    for (let i = 0; i < 4; i++) await deposit(v1, 1, `k${i}`);
    await settle();
    const v2 = handlerOf(store, { snapshots, snapshotEveryEvents: 2, snapshotKind: jarKind(2) });
    expect((await v2.load(jarDecider, STREAM)).state).toEqual({ balance: 4, events: 4 });
    expect(v2.stats().snapshotLoads).toBe(0);
    await settle();
    // ... and v2 wrote its own, which v1 in turn does not read.
    expect((await snapshots.read(STREAM, 'jar.v2'))?.revision).toBe(3n);
    expect(await snapshots.read(STREAM, 'jar.v1')).toBeUndefined();
  });

  it('a snapshot store that fails is reported and the commands go on', async () => {
    const failures: string[] = [];
    const broken: SnapshotStore = {
      read: () => Promise.reject(new Error('snapshots down')),
      write: (_: StoredSnapshot) => Promise.reject(new Error('snapshots down')),
    };
    const store = new MemoryEventStore();
    const handler = handlerOf(store, {
      snapshots: broken,
      snapshotEveryEvents: 1,
      onSnapshotError: (_, stream) => failures.push(stream),
    });
    for (let i = 0; i < 3; i++) await deposit(handler, 1, `k${i}`);
    await settle();
    const cold = handlerOf(store, { snapshots: broken, onSnapshotError: (_, s) => failures.push(s) });
    expect((await cold.load(jarDecider, STREAM)).state).toEqual({ balance: 3, events: 3 });
    expect(failures.length).toBeGreaterThanOrEqual(4);
    expect(handler.stats().snapshotErrors).toBeGreaterThanOrEqual(3);
  });
});

describe('CommandHandler id window', () => {
  it('keeps at most idWindow ids per stream and answers an older retry from the store', async () => {
    const store = new MemoryEventStore();
    const handler = handlerOf(store, { idWindow: 3 });
    const first = await deposit(handler, 7, 'first');
    for (let i = 0; i < 5; i++) await deposit(handler, 1, `k${i}`);
    const again = await deposit(handler, 7, 'first');
    expect(again).toMatchObject({ replayed: true, position: first.position });
    expect(again.events.map((e) => e.id)).toEqual(first.events.map((e) => e.id));
    expect(handler.stats().idLookups).toBeGreaterThan(0);
    expect(await store.headPosition()).toBe(5n);
    // A new command on a stream past the window costs one lookup and appends.
    await deposit(handler, 1, 'new');
    expect(await store.headPosition()).toBe(6n);
  });

  it('a stream within the window never asks the store', async () => {
    const store = new MemoryEventStore();
    const handler = handlerOf(store, { idWindow: 10 });
    for (let i = 0; i < 5; i++) await deposit(handler, 1, `k${i}`);
    await deposit(handler, 1, 'k0');
    expect(handler.stats().idLookups).toBe(0);
  });
});

describe('CommandHandler cache bounds', () => {
  it('keeps the estimated bytes of every cached stream within cacheMaxBytes, evicting the oldest', async () => {
    const store = new MemoryEventStore();
    const handler = handlerOf(store, { cacheMaxBytes: 10_000, snapshotEveryEvents: 1 });
    for (let s = 0; s < 50; s++) await deposit(handler, 1, `k${s}`, `jar-t1.s${s}`);
    const stats = handler.stats();
    expect(stats.cachedBytes).toBeLessThanOrEqual(10_000);
    expect(stats.cachedStreams).toBeLessThan(50);
    expect(stats.cachedStreams).toBeGreaterThan(0);
  });

  it('does not cache a stream estimated above cacheMaxStreamBytes, and still decides right', async () => {
    const store = new MemoryEventStore();
    const handler = handlerOf(store, { cacheMaxStreamBytes: 100, snapshotEveryEvents: 1 });
    for (let i = 0; i < 3; i++) await deposit(handler, 2, `k${i}`);
    expect(handler.stats()).toMatchObject({ cachedStreams: 0, cachedBytes: 0 });
    expect(handler.stats().oversizeStreams).toBeGreaterThan(0);
    expect((await handler.load(jarDecider, STREAM)).state).toEqual({ balance: 6, events: 3 });
  });
});
