import { MemoryEventStore } from '../../src/eventstore/memory.js';
import { describeEventStoreContract } from './contract.js';

describeEventStoreContract('memory', async () => {
  const store = new MemoryEventStore();
  return { store, dispose: () => store.close() };
});
