import type { RouteModule } from '../../../src/api/v1/routeKit.js';
import { CommandHandler } from '../../../src/commands/commandHandler.js';
import type { EventStore } from '../../../src/eventstore/port.js';
import { createWalletControlsFeature } from '../../../src/walletControlsFeature.js';

/** The wallet control routes for the shell harness (role matrix, fuzz): the real write side over its store. */
export function walletControlShellFeatures(): { routes: (store: EventStore) => Promise<RouteModule[]> } {
  return {
    async routes(store) {
      return createWalletControlsFeature({ handler: new CommandHandler({ store, clock: () => new Date() }) })
        .routes;
    },
  };
}
