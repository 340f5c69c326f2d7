import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { expect } from 'vitest';
import type { Decider } from '../../src/domain/decider.js';
import { DomainError, type DomainErrorCode } from '../../src/domain/errors.js';
import { EVENT_SCHEMAS } from '../../src/domain/events.js';
import { assertBalanced, type JournalEntry } from '../../src/domain/journal.js';

const SCHEMA_BY_TYPE = new Map<string, TSchema>(
  Object.values(EVENT_SCHEMAS).flatMap((schemas) => Object.entries(schemas)),
);

/**
 * Given / when / then specifications for deciders:
 *   spec(decider).given(events).when(command).thenEmits(expectedEvents)
 *   spec(decider).given(events).when(command).thenFails('insufficient_funds')
 * (`thenEmits`, not `then`: an object with a `then` method is a thenable and `await` would call it.)
 * `thenEmits` also checks what every produced event must satisfy: JSON round-trips unchanged, any entry
 * balances, and the decider's own evolve accepts the events after the history.
 */
export function spec<C, E, S>(decider: Decider<C, E, S>) {
  return {
    given(history: readonly E[]) {
      const state = history.reduce(decider.evolve, decider.initialState());
      return {
        state,
        when(command: C) {
          const run = () => decider.decide(command, state);
          return {
            thenEmits(expected: readonly E[] | ((events: E[]) => void)): E[] {
              const events = run();
              checkEvents(decider, state, events);
              if (typeof expected === 'function') expected(events);
              else expect(events).toEqual(expected);
              return events;
            },
            thenFails(code: DomainErrorCode, message?: RegExp): DomainError {
              let caught: unknown;
              try {
                run();
              } catch (error) {
                caught = error;
              }
              expect(caught, `expected DomainError ${code}`).toBeInstanceOf(DomainError);
              const error = caught as DomainError;
              expect(error.code, error.message).toBe(code);
              if (message) expect(error.message).toMatch(message);
              return error;
            },
          };
        },
      };
    },
  };
}

function checkEvents<C, E, S>(decider: Decider<C, E, S>, state: S, events: E[]): void {
  expect(JSON.parse(JSON.stringify(events))).toEqual(events);
  for (const event of events) {
    const entry = (event as { data?: { entry?: JournalEntry } }).data?.entry;
    if (entry) assertBalanced(entry);
    // Its data matches the schema the read side decodes it with (src/domain/events.ts).
    const { type, data } = event as { type: string; data: unknown };
    const schema = SCHEMA_BY_TYPE.get(type);
    expect(schema, `${type} is a registered event type`).toBeDefined();
    if (schema) expect([...Value.Errors(schema, data)].map((e) => `${e.path}: ${e.message}`)).toEqual([]);
  }
  // The events decide produced must fold without tripping an invariant.
  events.reduce(decider.evolve, state);
}

/** Runs commands one after another through decide + evolve, returning every event (test histories). */
export function history<C, E, S>(decider: Decider<C, E, S>, commands: readonly C[]): E[] {
  let state = decider.initialState();
  const all: E[] = [];
  for (const command of commands) {
    const events = decider.decide(command, state);
    for (const event of events) state = decider.evolve(state, event);
    all.push(...events);
  }
  return all;
}

export function foldEvents<C, E, S>(decider: Decider<C, E, S>, events: readonly E[]): S {
  return events.reduce(decider.evolve, decider.initialState());
}

/** The entry of a money event (undefined for events that move nothing), for assertions across unions. */
export function entryOf(event: { data: unknown } | undefined): JournalEntry | undefined {
  return (event?.data as { entry?: JournalEntry } | undefined)?.entry;
}
