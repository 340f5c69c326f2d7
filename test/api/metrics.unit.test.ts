import { describe, expect, it } from 'vitest';
import { createMetrics, withAppendMetrics } from '../../src/api/metrics.js';
import { MemoryEventStore } from '../../src/eventstore/memory.js';

const metadata = {
  tenantId: 't1',
  correlationId: 'c',
  causationId: 'c',
  actor: { id: 'a', role: 'service' },
  idempotencyKey: 'k',
  occurredAt: '2026-01-01T00:00:00.000Z',
  schemaVersion: 1,
};

describe('withAppendMetrics', () => {
  it('times appends, binds the other methods once, and follows a method replaced on the store', async () => {
    const metrics = createMetrics();
    const inner = new MemoryEventStore();
    const store = withAppendMetrics(inner, metrics);
    await store.append(
      'jar-t1.a',
      [{ id: '6f1c1f7e-3c1a-4f4e-9a61-0b8c8f0e7d11', type: 'Deposited', data: { amount: 1 }, metadata }],
      { expectedRevision: 'no_stream' },
    );
    const observed = await metrics.registry.getSingleMetricAsString(
      'ledger_eventstore_append_duration_seconds',
    );
    expect(observed).toMatch(
      /ledger_eventstore_append_duration_seconds_count\{store="memory",outcome="ok"\} 1/,
    );
    expect(store.readStream).toBe(store.readStream);
    expect((await store.readStream('jar-t1.a', { maxCount: 10 })).map((e) => e.type)).toEqual(['Deposited']);
    const replaced = async () => 42n;
    inner.headPosition = replaced;
    expect(await store.headPosition()).toBe(42n);
  });
});

describe('balance cache metrics', () => {
  it('exist only for a process with a cache, and report its counters at scrape time', async () => {
    const metrics = createMetrics();
    expect(await metrics.registry.metrics()).not.toContain('balance_cache');
    let stats = {
      hits: 5,
      joined: 1,
      misses: 2,
      discarded: 1,
      invalidations: 0,
      flushes: 1,
      entries: 2,
      live: true,
    };
    metrics.setBalanceCacheSource(() => stats);
    let text = await metrics.registry.metrics();
    expect(text).toMatch(/ledger_balance_cache_reads_total\{outcome="hit"\} 5/);
    expect(text).toMatch(/ledger_balance_cache_reads_total\{outcome="miss"\} 2/);
    expect(text).toMatch(/ledger_balance_cache_discarded_total 1/);
    expect(text).toMatch(/ledger_balance_cache_live 1/);
    stats = { ...stats, hits: 9, live: false };
    text = await metrics.registry.metrics();
    expect(text).toMatch(/ledger_balance_cache_reads_total\{outcome="hit"\} 9/);
    expect(text).toMatch(/ledger_balance_cache_live 0/);
  });
});

describe('command cache metrics', () => {
  it('report the handler cache against its bounds and the snapshot counters at scrape time', async () => {
    const { CommandHandler } = await import('../../src/commands/commandHandler.js');
    const metrics = createMetrics();
    const handler = new CommandHandler({
      store: new MemoryEventStore(),
      clock: () => new Date(),
      cacheMaxBytes: 5_000_000,
    });
    metrics.setCommandCacheSource(() => ({ ...handler.stats(), ...handler.limits() }));
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/ledger_command_cache_bytes 0/);
    expect(text).toMatch(/ledger_command_cache_max_bytes 5000000/);
    expect(text).toMatch(/ledger_command_cache_max_stream_bytes \d+/);
    expect(text).toMatch(/ledger_command_cache_streams 0/);
    expect(text).toMatch(/ledger_command_snapshots_total\{outcome="loaded"\} 0/);
    expect(text).toMatch(/ledger_command_id_lookups_total 0/);
  });
});
