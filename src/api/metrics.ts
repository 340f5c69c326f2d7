import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { AppendOptions, AppendResult, EventStore, EventToAppend } from '../eventstore/port.js';
import type { BalanceCacheStats } from '../projections/balanceCache.js';
import {
  CLEARING_ALERT_AGE_HOURS,
  type ClearingNotZero,
  type LatestReconciliation,
} from '../projections/operationalGauges.js';
import type { CircuitState } from '../stripe/circuitBreaker.js';

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
  /** Sets the callback that yields the command handler's aggregate cache and snapshot counters. */
  setCommandCacheSource(source: () => CommandCacheStats): void;
  /** Stripe calls by operation and outcome, and their latency (withGatewayMetrics). */
  stripeCalls: Counter<'operation' | 'outcome'>;
  stripeCallDuration: Histogram<'operation'>;
  /** Sets the callback that yields the Stripe circuit breaker's state at scrape time. */
  setStripeCircuitSource(source: () => CircuitState): void;
  /** Sets the callbacks that read clearing accounts and reconciliation results at scrape time. */
  setOperationalSources(sources: OperationalSources): void;
  /** Sets the callback that yields the tenants whose read models are stalled (src/projections/stalls.ts). */
  setProjectionStallSource(
    source: () => Promise<ReadonlyArray<{ projection: string; tenantId: string }>>,
  ): void;
}

/** The command handler's cache and snapshots (CommandHandler.stats() and limits()), read at scrape time. */
export interface CommandCacheStats {
  cachedStreams: number;
  cachedBytes: number;
  cacheMaxBytes: number;
  cacheMaxStreamBytes: number;
  snapshotLoads: number;
  snapshotWrites: number;
  snapshotMismatches: number;
  snapshotErrors: number;
  oversizeStreams: number;
  idLookups: number;
}

/** Store-backed readings for the alerts that need a person (src/projections/operationalGauges.ts). */
export interface OperationalSources {
  clearingNotZero: () => Promise<ClearingNotZero[]>;
  latestReconciliations: () => Promise<LatestReconciliation[]>;
}

export function createMetrics(options: { defaultMetrics?: boolean; prefix?: string } = {}): Metrics {
  const prefix = options.prefix ?? 'ledger_';
  const registry = new Registry();
  if (options.defaultMetrics ?? false) collectDefaultMetrics({ register: registry, prefix });
  let lagSource: (() => Promise<number>) | undefined;
  let stallSource: (() => Promise<ReadonlyArray<{ projection: string; tenantId: string }>>) | undefined;
  let cacheSource: (() => BalanceCacheStats | undefined) | undefined;
  let circuitSource: (() => CircuitState) | undefined;
  let commandCacheSource: (() => CommandCacheStats) | undefined;
  let operational: OperationalSources | undefined;
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
    stripeCalls: new Counter({
      name: `${prefix}stripe_calls_total`,
      help: 'Calls to Stripe by gateway operation and outcome (ok, or the gateway error code), after retries',
      labelNames: ['operation', 'outcome'] as const,
      registers: [registry],
    }),
    stripeCallDuration: new Histogram({
      name: `${prefix}stripe_call_duration_seconds`,
      help: 'Stripe call latency by gateway operation, retries included',
      labelNames: ['operation'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    setStripeCircuitSource(source) {
      circuitSource = source;
    },
    setOperationalSources(sources) {
      operational = sources;
    },
    setProjectionStallSource(source) {
      stallSource = source;
    },
    setCommandCacheSource(source) {
      if (!commandCacheSource) registerCommandCacheMetrics(registry, prefix, () => commandCacheSource?.());
      commandCacheSource = source;
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
  new Gauge({
    name: `${prefix}projection_stalled`,
    help: "1 per projection and tenant whose read models stopped at an event they cannot apply (the tenant's later events are held back until `projections resume`)",
    labelNames: ['projection', 'tenant'] as const,
    registers: [registry],
    async collect() {
      if (!stallSource) return;
      try {
        const stalls = await stallSource();
        this.reset();
        for (const s of stalls) this.set({ projection: s.projection, tenant: s.tenantId }, 1);
      } catch {
        // A failing source must not break the whole scrape; the gauge keeps its last values.
      }
    },
  });
  new Gauge({
    name: `${prefix}stripe_circuit_state`,
    help: 'The Stripe circuit breaker: 1 for its current state (closed, open, half_open), 0 for the others',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      if (!circuitSource) return;
      const current = circuitSource();
      for (const state of ['closed', 'open', 'half_open'] as const)
        this.set({ state }, state === current ? 1 : 0);
    },
  });
  new Gauge({
    name: `${prefix}clearing_accounts_not_zero`,
    help: `Clearing accounts of a tenant still non-zero ${CLEARING_ALERT_AGE_HOURS} h after their last posting (they should return to zero)`,
    labelNames: ['tenant'] as const,
    registers: [registry],
    async collect() {
      if (!operational) return;
      try {
        const rows = await operational.clearingNotZero();
        this.reset();
        for (const r of rows) this.set({ tenant: r.tenantId }, r.accounts);
      } catch {
        // A failing read must not break the whole scrape; the gauge keeps its last values.
      }
    },
  });
  const reconciliationDifferences = new Gauge({
    name: `${prefix}reconciliation_differences`,
    help: "Items the tenant's latest completed reconciliation could not match, by kind",
    labelNames: ['tenant', 'kind'] as const,
    registers: [registry],
  });
  const reconciliationDrift = new Gauge({
    name: `${prefix}reconciliation_drift_minor_units`,
    help: "Ledger minus Stripe, in minor units, per currency in the tenant's latest completed reconciliation",
    labelNames: ['tenant', 'currency'] as const,
    registers: [registry],
  });
  new Gauge({
    name: `${prefix}reconciliation_last_completed_timestamp_seconds`,
    help: "When the tenant's latest reconciliation completed (Unix time)",
    labelNames: ['tenant'] as const,
    registers: [registry],
    async collect() {
      if (!operational) return;
      let runs: LatestReconciliation[];
      try {
        runs = await operational.latestReconciliations();
      } catch {
        return;
      }
      this.reset();
      reconciliationDifferences.reset();
      reconciliationDrift.reset();
      for (const run of runs) {
        const tenant = run.tenantId;
        this.set({ tenant }, Math.floor(run.completedAt.getTime() / 1000));
        const s = run.summary;
        const kinds = {
          missing_in_ledger: s.missingInLedger,
          missing_in_stripe: s.missingInStripe,
          amount_mismatch: s.amountMismatch,
          unbooked_fee: s.unbookedFee,
        };
        for (const [kind, n] of Object.entries(kinds))
          reconciliationDifferences.set({ tenant, kind }, n ?? 0);
        for (const d of s.drift ?? [])
          reconciliationDrift.set({ tenant, currency: d.currency }, d.difference);
      }
    },
  });
  return metrics;
}

/**
 * Wraps a Stripe gateway so that every method call is counted and timed in stripeCalls and
 * stripeCallDuration (operation: the method's name; outcome: ok or the gateway error's code).
 */
export function withGatewayMetrics<G extends object>(gateway: G, metrics: Metrics): G {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(gateway, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string' || property === 'constructor')
        return value;
      const cached = wrapped.get(property);
      if (cached) return cached;
      const operation = property;
      const method = value as (...args: unknown[]) => unknown;
      const timed = (...args: unknown[]): unknown => {
        const end = metrics.stripeCallDuration.startTimer({ operation });
        let result: unknown;
        try {
          result = method.apply(target, args);
        } catch (error) {
          end();
          metrics.stripeCalls.inc({ operation, outcome: outcomeOf(error) });
          throw error;
        }
        if (!(result instanceof Promise)) {
          end();
          return result;
        }
        return result.then(
          (v: unknown) => {
            end();
            metrics.stripeCalls.inc({ operation, outcome: 'ok' });
            return v;
          },
          (error: unknown) => {
            end();
            metrics.stripeCalls.inc({ operation, outcome: outcomeOf(error) });
            throw error;
          },
        );
      };
      wrapped.set(property, timed);
      return timed;
    },
  });
}

function outcomeOf(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^[a-z_]{1,40}$/.test(code) ? code : 'error';
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

/**
 * The command handler's aggregate cache (estimated bytes and streams against their bounds) and its
 * snapshots, from its own counters at scrape time (docs/architecture.md, "Flat cost for long-lived
 * streams").
 */
function registerCommandCacheMetrics(
  registry: Registry,
  prefix: string,
  stats: () => CommandCacheStats | undefined,
): void {
  const gauge = (name: string, help: string, read: (s: CommandCacheStats) => number) =>
    new Gauge({
      name: `${prefix}${name}`,
      help,
      registers: [registry],
      collect() {
        const s = stats();
        if (s) this.set(read(s));
      },
    });
  gauge(
    'command_cache_bytes',
    'Estimated heap bytes of the aggregates the command handler caches',
    (s) => s.cachedBytes,
  );
  gauge(
    'command_cache_max_bytes',
    'Bound on command_cache_bytes (the cache evicts beyond it)',
    (s) => s.cacheMaxBytes,
  );
  gauge(
    'command_cache_max_stream_bytes',
    'Largest estimated aggregate the command handler keeps cached (larger ones load from their snapshot)',
    (s) => s.cacheMaxStreamBytes,
  );
  gauge('command_cache_streams', 'Aggregates the command handler caches', (s) => s.cachedStreams);
  new Counter({
    name: `${prefix}command_snapshots_total`,
    help: 'Aggregate snapshots by outcome (loaded: a cold load started from one; written; mismatch: refused, the stream did not hold its event; error: could not be read or written)',
    labelNames: ['outcome'] as const,
    registers: [registry],
    collect() {
      const s = stats();
      if (!s) return;
      this.reset();
      this.inc({ outcome: 'loaded' }, s.snapshotLoads);
      this.inc({ outcome: 'written' }, s.snapshotWrites);
      this.inc({ outcome: 'mismatch' }, s.snapshotMismatches);
      this.inc({ outcome: 'error' }, s.snapshotErrors);
    },
  });
  new Counter({
    name: `${prefix}command_id_lookups_total`,
    help: 'Commands older than the id window kept per cached stream, checked with the event store',
    registers: [registry],
    collect() {
      const s = stats();
      if (!s) return;
      this.reset();
      this.inc(s.idLookups);
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
