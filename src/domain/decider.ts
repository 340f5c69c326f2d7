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

/** Who asked for a command, as recorded in audited events (same shape as the event store's Actor). */
export interface Actor {
  id: string;
  role: string;
}
