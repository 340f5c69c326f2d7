import { EsdbEventStore } from '../../src/eventstore/esdb.js';
import { EsdbEmulator } from '../esdb-emulator/server.js';
import { describeEventStoreContract } from './contract.js';

/**
 * The shared contract suite on the esdb adapter: always against the gRPC emulator (driven by the real
 * @eventstore/db-client), and also against a real EventStoreDB when EVENTSTORE_URL is set
 * (`docker compose up eventstore`, then `EVENTSTORE_URL=esdb://localhost:2113?tls=false npm test`).
 */
describeEventStoreContract('esdb on the emulator', async () => {
  const emulator = await EsdbEmulator.start();
  const store = new EsdbEventStore({ connectionString: emulator.connectionString, callTimeoutMs: 5_000 });
  return {
    store,
    dispose: async () => {
      await store.close();
      await emulator.stop();
    },
  };
});

const realServer = process.env.EVENTSTORE_URL;
if (realServer) {
  describeEventStoreContract('esdb on EVENTSTORE_URL', async () => {
    const store = new EsdbEventStore({ connectionString: realServer, callTimeoutMs: 10_000 });
    return { store, dispose: () => store.close() };
  });
}
