import type { Registry } from 'prom-client';
import { Counter } from 'prom-client';
import type { EventFilter, EventStore, RecordedEvent, Subscription } from '../eventstore/port.js';
import { matchesFilter } from '../eventstore/validation.js';
import { type BackoffOptions, backoffDelayMs, sleep } from './backoff.js';
import type { CheckpointStore } from './checkpointStore.js';
import { type Logger, silentLogger } from './logger.js';

/** How the runner treats a failure of a step. */
export type FailureKind = 'transient' | 'poison';

export interface ProcessManagerRunnerOptions {
  /** Subscriber name: the checkpoint key. */
  name: string;
  store: EventStore;
  checkpoints: CheckpointStore;
  filter?: EventFilter;
  /** Performs the next step for one event. Must be idempotent (deterministic event ids). */
  handle: (event: RecordedEvent) => Promise<void>;
  /** Classifies a failure: a poison event is recorded and skipped, a transient one retried. */
  classify: (error: unknown) => { kind: FailureKind; code: string };
  logger?: Logger;
  /** Attempts per event on transient failures before the runner resubscribes from its checkpoint. */
  maxAttemptsPerEvent?: number;
  backoff?: BackoffOptions;
  /** Pause before resubscribing after the subscription or a step failed. */
  restartDelayMs?: number;
  maxBuffered?: number;
  registry?: Registry;
  random?: () => number;
}

export interface RunnerStats {
  handled: number;
  poison: number;
  transientFailures: number;
  restarts: number;
  checkpoint: bigint | undefined;
}

export interface ProcessManagerHandle {
  /** Resolves once every event with position <= `position` was handled (bounded by `timeoutMs`). */
  waitForPosition(position: bigint, timeoutMs: number): Promise<void>;
  stats(): RunnerStats;
  /** Stops after the event in progress; its checkpoint is saved only if its step finished. */
  stop(): Promise<void>;
}

/** Skipped (non-trigger) positions are saved at least this often. */
const SKIPPED_SAVE_EVERY = 200;

const poisonCounters = new WeakMap<Registry, Counter<'subscriber' | 'code'>>();

/**
 * A catch-up subscription to the store that performs one step per event, exactly once in effect:
 * it resumes from the saved checkpoint, saves the checkpoint after each step, and relies on the steps'
 * deterministic event ids so that a step repeated after a crash appends nothing.
 */
export function startProcessManagerRunner(options: ProcessManagerRunnerOptions): ProcessManagerHandle {
  const logger = options.logger ?? silentLogger;
  const maxAttempts = options.maxAttemptsPerEvent ?? 5;
  const backoff = options.backoff ?? { baseDelayMs: 20, maxDelayMs: 2_000 };
  const restartDelayMs = options.restartDelayMs ?? 1_000;
  const random = options.random ?? Math.random;
  const counter = options.registry ? poisonCounter(options.registry) : undefined;
  const stats: RunnerStats = {
    handled: 0,
    poison: 0,
    transientFailures: 0,
    restarts: 0,
    checkpoint: undefined,
  };
  const waiters = new Set<{ position: bigint; resolve: () => void }>();
  let stopped = false;
  let subscription: Subscription | undefined;
  let wakeFromPause: (() => void) | undefined;

  const advance = (position: bigint) => {
    stats.checkpoint = position;
    for (const w of waiters) {
      if (w.position <= position) {
        waiters.delete(w);
        w.resolve();
      }
    }
  };

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wakeFromPause = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  async function handleWithRetries(event: RecordedEvent): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await options.handle(event);
        stats.handled++;
        return;
      } catch (error) {
        const { kind, code } = options.classify(error);
        const message = error instanceof Error ? error.message : String(error);
        if (kind === 'poison') {
          stats.poison++;
          counter?.inc({ subscriber: options.name, code });
          logger.error(
            {
              subscriber: options.name,
              eventId: event.id,
              type: event.type,
              stream: event.streamName,
              code,
              err: message,
            },
            'process manager: poison event recorded and skipped',
          );
          await options.checkpoints.recordPoison({
            subscriber: options.name,
            eventId: event.id,
            position: event.position,
            tenantId: event.metadata.tenantId,
            streamName: event.streamName,
            eventType: event.type,
            errorCode: code,
            errorMessage: message,
          });
          return;
        }
        stats.transientFailures++;
        logger.warn(
          { subscriber: options.name, eventId: event.id, type: event.type, attempt, code, err: message },
          'process manager: step failed, retrying',
        );
        if (attempt + 1 >= maxAttempts || stopped) throw error;
        await sleep(backoffDelayMs(attempt, backoff, random));
      }
    }
  }

  async function runOnce(): Promise<void> {
    const from = await options.checkpoints.load(options.name);
    if (stats.checkpoint === undefined || (from !== undefined && from > stats.checkpoint)) {
      if (from !== undefined) advance(from);
    }
    // Unfiltered on purpose: skipping other events locally lets the checkpoint (and waitForPosition) follow
    // the head; the skipped positions are saved lazily since re-reading them after a crash is harmless.
    subscription = options.store.subscribe({
      ...(from === undefined ? {} : { after: from }),
      maxBuffered: options.maxBuffered ?? 500,
    });
    let unsaved = 0;
    const flush = async () => {
      if (unsaved > 0 && stats.checkpoint !== undefined) {
        await options.checkpoints.save(options.name, stats.checkpoint);
        unsaved = 0;
      }
    };
    try {
      for await (const message of subscription) {
        if (stopped) break;
        if (message.kind === 'caughtUp') {
          await flush();
          continue;
        }
        const event = message.event;
        if (!matchesFilter(event, options.filter)) {
          advance(event.position);
          if (++unsaved >= SKIPPED_SAVE_EVERY) await flush();
          continue;
        }
        await handleWithRetries(event);
        if (stopped) break;
        await options.checkpoints.save(options.name, event.position);
        unsaved = 0;
        advance(event.position);
      }
    } finally {
      await flush().catch(() => undefined);
    }
  }

  const loop = (async () => {
    while (!stopped) {
      try {
        await runOnce();
      } catch (error) {
        if (stopped) break;
        stats.restarts++;
        logger.error(
          { subscriber: options.name, err: error instanceof Error ? error.message : String(error) },
          'process manager: restarting from checkpoint',
        );
      } finally {
        await subscription?.close().catch(() => undefined);
      }
      if (!stopped) await pause(restartDelayMs);
    }
  })();

  return {
    waitForPosition(position, timeoutMs) {
      if (stats.checkpoint !== undefined && stats.checkpoint >= position) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const waiter = {
          position,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`${options.name}: position ${position} not reached within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    stats: () => ({ ...stats }),
    async stop() {
      stopped = true;
      wakeFromPause?.();
      await subscription?.close();
      await loop;
    },
  };
}

function poisonCounter(registry: Registry): Counter<'subscriber' | 'code'> {
  let counter = poisonCounters.get(registry);
  if (!counter) {
    counter = new Counter({
      name: 'ledger_process_manager_poison_events_total',
      help: 'Events whose process-manager step can never succeed; recorded in pm_poison_events and skipped',
      labelNames: ['subscriber', 'code'],
      registers: [registry],
    });
    poisonCounters.set(registry, counter);
  }
  return counter;
}
