import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { AppendOptions, AppendResult, EventStore, EventToAppend } from '../eventstore/port.js';
import type { BalanceCacheStats } from '../projections/balanceCache.js';

/**
 * Prometheus instruments of one process, on its own registry (so tests can build many apps). Other
 * layers observe through the instruments exposed here; /metrics serves `registry`.
 */
export interface Metrics {
  registry: Registry;
  httpRequestDuration: Histogram<'method' | 'route' | 'status_code'>;
  commandOutcomes: Counter<'command' | 'code'>;
  eventStoreAppendDuration: Histogram<'store' | 'outcome'>;
  rateLimited: Counter<'class'>;
  /** Sets the callback that yields the projection lag (in positions) each time /metrics is scraped. */
  setProjectionLagSource(source: () => Promise<number>): void;
  /** Sets the callback that yields the wallet balance cache's counters (undefined: cache off). */
  setBalanceCacheSource(source: () => BalanceCacheStats | undefined): void;
}

export function createMetrics(options: { defaultMetrics?: boolean; prefix?: string } = {}): Metrics {
  const prefix = options.prefix ?? 'ledger_';
  const registry = new Registry();
  if (options.defaultMetrics ?? false) collectDefaultMetrics({ register: registry, prefix });
  let lagSource: (() => Promise<number>) | undefined;
  let cacheSource: (() => BalanceCacheStats | undefined) | undefined;
  const metrics: Metrics = {
    registry,
    httpRequestDuration: new Histogram({
      name: `${prefix}http_request_duration_seconds`,
      help: 'HTTP request latency by route template',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    commandOutcomes: new Counter({
      name: `${prefix}command_outcomes_total`,
      help: 'Commands issued through the API by outcome code (ok or the problem code)',
      labelNames: ['command', 'code'] as const,
      registers: [registry],
    }),
    eventStoreAppendDuration: new Histogram({
      name: `${prefix}eventstore_append_duration_seconds`,
      help: 'Event store append latency',
      labelNames: ['store', 'outcome'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: `${prefix}http_rate_limited_total`,
      help: 'Requests refused by the rate limiter, by rule class',
      labelNames: ['class'] as const,
      registers: [registry],
    }),
    setProjectionLagSource(source) {
      lagSource = source;
    },
    setBalanceCacheSource(source) {
      // Registered only for a process that has a cache: a cache that is off exports nothing, rather
      // than a `live 0` that would read like a cache being bypassed.
      if (!cacheSource) registerBalanceCacheMetrics(registry, prefix, () => cacheSource?.());
      cacheSource = source;
    },
  };
  new Gauge({
    name: `${prefix}projection_lag_positions`,
    help: 'Event store head position minus the position the slowest projection has applied',
    registers: [registry],
    async collect() {
      if (!lagSource) return;
      try {
        this.set(await lagSource());
      } catch {
        // A failing source must not break the whole scrape; the gauge keeps its last value.
      }
    },
  });
  return metrics;
}

/** The balance cache's own counters (one object, no per-read instrument cost), read at scrape time. */
function registerBalanceCacheMetrics(
  registry: Registry,
  prefix: string,
  stats: () => BalanceCacheStats | undefined,
): void {
  new Counter({
    name: `${prefix}balance_cache_reads_total`,
    help: 'Wallet balance reads through the cache by outcome (hit: from memory; joined: shared a database read already under way; miss: read from the database)',
    labelNames: ['outcome'] as const,
    registers: [registry],
    collect() {
      const s = stats();
      if (!s) return;
      this.reset();
      this.inc({ outcome: 'hit' }, s.hits);
      this.inc({ outcome: 'joined' }, s.joined);
      this.inc({ outcome: 'miss' }, s.misses);
    },
  });
  new Counter({
    name: `${prefix}balance_cache_discarded_total`,
    help: 'Misses whose value was not kept because a change or a flush overtook the read (a subset of misses)',
    registers: [registry],
    collect() {
      const s = stats();
      if (!s) return;
      this.reset();
      this.inc(s.discarded);
    },
  });
  new Gauge({
    name: `${prefix}balance_cache_live`,
    help: '1 while the balance cache hears the projection (serves from memory), 0 while it is bypassed',
    registers: [registry],
    collect() {
      const s = stats();
      if (s) this.set(s.live ? 1 : 0);
    },
  });
}

/** Wraps an event store so every append is timed into eventStoreAppendDuration. */
export function withAppendMetrics(store: EventStore, metrics: Metrics): EventStore {
  const append = async (
    streamName: string,
    events: EventToAppend[],
    options: AppendOptions,
  ): Promise<AppendResult> => {
    const end = metrics.eventStoreAppendDuration.startTimer({ store: store.kind });
    try {
      const result = await store.append(streamName, events, options);
      end({ outcome: 'ok' });
      return result;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      end({ outcome: typeof code === 'string' ? code : 'error' });
      throw error;
    }
  };
  // Methods are bound once per function, not on every access: the command path calls through here
  // several times per request. A method replaced on the target is bound afresh.
  const bound = new Map<PropertyKey, { method: unknown; boundMethod: unknown }>();
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'append') return append;
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      const cached = bound.get(property);
      if (cached?.method === value) return cached.boundMethod;
      const boundMethod: unknown = value.bind(target);
      bound.set(property, { method: value, boundMethod });
      return boundMethod;
    },
  });
}
