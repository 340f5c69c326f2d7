import type { Static, TSchema } from '@sinclair/typebox';

/**
 * The decider pattern (Jérémie Chassaing; Emmett): pure decide/evolve over one aggregate.
 * `decide` returns the new events or throws a DomainError; it never performs I/O.
 */
export interface Decider<Command, Event, State> {
  initialState: () => State;
  decide: (command: Command, state: State) => Event[];
  evolve: (state: State, event: Event) => State;
}

/** A domain event as the domain sees it: a past-tense type and a JSON-serializable payload. */
export interface DomainEvent<Type extends string = string, Data = unknown> {
  type: Type;
  data: Data;
}

/** Event type -> schema of its data: how each aggregate declares the events its stream may hold. */
export type EventSchemas = Readonly<Record<string, TSchema>>;

/** The event union of a schema map: one DomainEvent per type, its data the schema's static type. */
export type EventsOf<M extends EventSchemas> = {
  [T in keyof M & string]: DomainEvent<T, Static<M[T]>>;
}[keyof M & string];

/** One event of a schema map, by type. */
export type EventOf<M extends EventSchemas, T extends keyof M & string> = DomainEvent<T, Static<M[T]>>;
