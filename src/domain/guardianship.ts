import type { Decider, EventOf, EventSchemas, EventsOf } from './decider.js';
import { DomainError, invariant } from './errors.js';
import { type Actor, ActorSchema, EntityIdSchema, InstantSchema, strictObject } from './schema.js';
import { parseInstant, requireActor, requireEntityId, toIso, validationFailed } from './validate.js';

/**
 * A student's guardians (docs/ledger-flows.md, "Guardians"): stream `guardianship-{t}.{studentId}`,
 * written by tenant admins. A linked guardian sees the student's wallet, limits and history, sets its
 * limits and approves bookings above the approval threshold; while one is linked the student cannot
 * raise their own limits. No postings.
 */
export const MAX_GUARDIANS_PER_STUDENT = 10;
/** Links and unlinks a student's stream may hold: readers fold it whole (the API's ownership check). */
export const MAX_GUARDIANSHIP_EVENTS = 1_000;

export interface LinkGuardian {
  type: 'LinkGuardian';
  studentId: string;
  guardianId: string;
  actor: Actor;
  linkedAt: string;
}

export interface UnlinkGuardian {
  type: 'UnlinkGuardian';
  studentId: string;
  guardianId: string;
  actor: Actor;
  unlinkedAt: string;
}

export type GuardianshipCommand = LinkGuardian | UnlinkGuardian;

export const GUARDIANSHIP_EVENTS = {
  GuardianLinked: strictObject({
    studentId: EntityIdSchema,
    guardianId: EntityIdSchema,
    actor: ActorSchema,
    linkedAt: InstantSchema,
  }),
  GuardianUnlinked: strictObject({
    studentId: EntityIdSchema,
    guardianId: EntityIdSchema,
    actor: ActorSchema,
    unlinkedAt: InstantSchema,
  }),
} as const satisfies EventSchemas;

export type GuardianshipEvent = EventsOf<typeof GUARDIANSHIP_EVENTS>;
export type GuardianLinked = EventOf<typeof GUARDIANSHIP_EVENTS, 'GuardianLinked'>;

export interface GuardianshipState {
  studentId: string | null;
  /** guardianId -> when linked, in link order. */
  guardians: ReadonlyMap<string, string>;
  version: number;
}

export const initialGuardianshipState = (): GuardianshipState => ({
  studentId: null,
  guardians: new Map(),
  version: 0,
});

export const isGuardianOf = (state: GuardianshipState, guardianId: string): boolean =>
  state.guardians.has(guardianId);

function checkStudent(state: GuardianshipState, value: unknown): string {
  const id = requireEntityId(value, 'studentId');
  if (state.studentId !== null && state.studentId !== id) {
    validationFailed(`command for student ${id} sent to the guardians of ${state.studentId}`, {
      field: 'studentId',
    });
  }
  return id;
}

function requireRoom(state: GuardianshipState, studentId: string): void {
  if (state.version >= MAX_GUARDIANSHIP_EVENTS) {
    throw new DomainError(
      'limit_exceeded',
      `the guardians of student ${studentId} changed ${MAX_GUARDIANSHIP_EVENTS} times, the most they may`,
      { max: MAX_GUARDIANSHIP_EVENTS },
    );
  }
}

export function decideGuardianship(
  command: GuardianshipCommand,
  state: GuardianshipState,
): GuardianshipEvent[] {
  switch (command.type) {
    case 'LinkGuardian': {
      const studentId = checkStudent(state, command.studentId);
      const guardianId = requireEntityId(command.guardianId, 'guardianId');
      const actor = requireActor(command.actor);
      const linkedAt = toIso(parseInstant(command.linkedAt, 'linkedAt'));
      if (guardianId === studentId) {
        validationFailed('a student cannot be their own guardian', { field: 'guardianId' });
      }
      if (state.guardians.has(guardianId)) return []; // linked already: nothing changes
      requireRoom(state, studentId);
      if (state.guardians.size >= MAX_GUARDIANS_PER_STUDENT) {
        throw new DomainError(
          'limit_exceeded',
          `student ${studentId} has ${MAX_GUARDIANS_PER_STUDENT} guardians, the most there may be`,
          { max: MAX_GUARDIANS_PER_STUDENT },
        );
      }
      return [{ type: 'GuardianLinked', data: { studentId, guardianId, actor, linkedAt } }];
    }
    case 'UnlinkGuardian': {
      const studentId = checkStudent(state, command.studentId);
      const guardianId = requireEntityId(command.guardianId, 'guardianId');
      const actor = requireActor(command.actor);
      const unlinkedAt = toIso(parseInstant(command.unlinkedAt, 'unlinkedAt'));
      if (!state.guardians.has(guardianId)) {
        throw new DomainError('not_found', `${guardianId} is not a guardian of student ${studentId}`, {
          guardianId,
        });
      }
      requireRoom(state, studentId);
      return [{ type: 'GuardianUnlinked', data: { studentId, guardianId, actor, unlinkedAt } }];
    }
    default:
      throw new DomainError('validation_failed', 'unknown guardianship command');
  }
}

export function evolveGuardianship(state: GuardianshipState, event: GuardianshipEvent): GuardianshipState {
  const e = event.data;
  invariant(state.studentId === null || state.studentId === e.studentId, `guardians of ${e.studentId} mixed`);
  invariant(
    state.version < MAX_GUARDIANSHIP_EVENTS,
    `more than ${MAX_GUARDIANSHIP_EVENTS} guardianship events`,
  );
  const guardians = new Map(state.guardians);
  switch (event.type) {
    case 'GuardianLinked':
      invariant(!guardians.has(event.data.guardianId), `guardian ${event.data.guardianId} linked twice`);
      invariant(
        guardians.size < MAX_GUARDIANS_PER_STUDENT,
        `more than ${MAX_GUARDIANS_PER_STUDENT} guardians`,
      );
      guardians.set(event.data.guardianId, event.data.linkedAt);
      break;
    case 'GuardianUnlinked':
      invariant(guardians.delete(event.data.guardianId), `unlinking ${event.data.guardianId}, not linked`);
      break;
  }
  return { studentId: e.studentId, guardians, version: state.version + 1 };
}

export const guardianshipDecider: Decider<GuardianshipCommand, GuardianshipEvent, GuardianshipState> = {
  initialState: initialGuardianshipState,
  decide: decideGuardianship,
  evolve: evolveGuardianship,
};
