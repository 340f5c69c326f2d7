import { walletControlRoutes } from './api/routes/walletControls.js';
import type { RouteModule } from './api/v1/routeKit.js';
import type { CommandHandler } from './commands/commandHandler.js';
import { WalletControls } from './commands/walletControls.js';

/**
 * Wallet controls, wired (docs/ledger-flows.md, "Spending limits"): the route module for the /v1
 * context over the ledger's command handler (the same one the bookings use, so its cache of the wallet
 * streams is shared). src/server.ts and the tests build it the same way.
 */
export interface WalletControlsFeatureOptions {
  handler: CommandHandler;
  clock?: () => Date;
}

export interface WalletControlsFeature {
  routes: RouteModule[];
  controls: WalletControls;
}

export function createWalletControlsFeature(options: WalletControlsFeatureOptions): WalletControlsFeature {
  const controls = new WalletControls(options.handler, options.clock ?? (() => new Date()));
  return { routes: [walletControlRoutes({ controls })], controls };
}
