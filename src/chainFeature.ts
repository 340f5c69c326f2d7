import { Gauge, type Registry } from 'prom-client';
import { chainRoutes } from './api/routes/chain.js';
import type { RouteModule } from './api/v1/routeKit.js';
import { Chainer } from './chain/chainer.js';
import { ChainStore } from './chain/chainStore.js';
import type { Logger } from './commands/logger.js';
import type { Database } from './db/database.js';
import type { EventStore } from './eventstore/port.js';

/**
 * The tamper-evident log, wired (src/chain): the chainer (one active per database, an advisory lock),
 * the chain-head route for the /v1 context, and the chain lag gauge. src/server.ts and the tests build
 * it the same way.
 */
export interface ChainFeatureOptions {
  db: Database;
  store: EventStore;
  logger?: Logger;
  registry?: Registry;
}

export interface ChainFeature {
  routes: RouteModule[];
  chain: ChainStore;
  chainer: Chainer;
  start(): void;
  stop(): Promise<void>;
}

const gauges = new WeakSet<Registry>();

export function createChainFeature(options: ChainFeatureOptions): ChainFeature {
  const chain = new ChainStore(options.db);
  const chainer = new Chainer({
    db: options.db,
    store: options.store,
    onError: (error) =>
      options.logger?.error({ err: error }, 'event chain: linking failed (restarting with backoff)'),
  });
  if (options.registry && !gauges.has(options.registry)) {
    gauges.add(options.registry);
    new Gauge({
      name: 'ledger_chain_lag_positions',
      help: 'Event store head position minus the last position the hash chain links (events not yet tamper-evident)',
      registers: [options.registry],
      async collect() {
        try {
          const [head, linked] = await Promise.all([options.store.headPosition(), chain.checkpoint()]);
          this.set(Number(head > linked ? head - linked : 0n));
        } catch {
          // A failing source must not break the scrape; the gauge keeps its last value.
        }
      },
    });
  }
  return {
    routes: [chainRoutes({ chain, store: options.store })],
    chain,
    chainer,
    start: () => chainer.start(),
    stop: () => chainer.stop(),
  };
}
