/** Public surface of the write side: the API, CLI and workers wire these. */
export type { CheckpointStore, PoisonRecord } from './checkpointStore.js';
export { MemoryCheckpointStore, PostgresCheckpointStore } from './checkpointStore.js';
export type { HandleResult } from './commandHandler.js';
export { CommandHandler } from './commandHandler.js';
export type { CommandContext, CommandResult } from './context.js';
export {
  CommandError,
  ConcurrencyConflictError,
  IdempotencyKeyReusedError,
  StreamBusyError,
} from './errors.js';
export type * from './ledgerCommands.js';
export { createLedgerService, LedgerService, type LedgerServiceOptions } from './ledgerService.js';
export type { Logger } from './logger.js';
export type { ProcessManagerHandle, RunnerStats } from './processManagerRunner.js';
export { classifyStepFailure, FLOW_TRIGGER_TYPES, startProcessManagers } from './processManagers.js';
export { DueTaskRunner, type SchedulerHandle, startScheduler } from './scheduler.js';
