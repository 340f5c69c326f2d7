import { type DecodedEvent, decodeEventOf, type LedgerEventType } from '../domain/events.js';
import { deterministicId } from '../domain/ids.js';
import type { HandledEvent, HandleResult } from './commandHandler.js';
import type { CommandContext } from './context.js';

/**
 * An event that starts the next step of a flow, decoded (typed by its type): just appended by the
 * command path, or read by a process manager.
 */
export type Trigger<T extends LedgerEventType = LedgerEventType> = DecodedEvent<T>;

/**
 * The context of a step triggered by `trigger`: its idempotency key is derived from the trigger's id, so
 * the command path and a process manager that both perform the step produce the same event ids (the
 * second appends nothing). Actor, correlation and the caller's metadata carry over; the trigger is the cause.
 */
export function stepContext(trigger: Trigger, step: string): CommandContext {
  return {
    tenantId: trigger.tenantId,
    actor: { id: trigger.metadata.actor.id, role: trigger.metadata.actor.role },
    idempotencyKey: `${step}:${trigger.id}`,
    correlationId: trigger.metadata.correlationId,
    causationId: trigger.id,
    ...(trigger.metadata.clientMetadata ? { clientMetadata: trigger.metadata.clientMetadata } : {}),
  };
}

/** A step is fully determined by its trigger, so the trigger id is its payload identity. */
export const stepPayloadHash = (trigger: Trigger, step: string) => `${step}:${trigger.id}`;

/** Deterministic journal entry id of a command's entry. */
export const entryIdFor = (ctx: CommandContext, commandType: string) =>
  deterministicId('entry', ctx.tenantId, commandType, ctx.idempotencyKey);

/** The single event of a command, decoded, as the trigger for the next step. */
export function triggerOf<T extends LedgerEventType>(
  result: HandleResult<unknown>,
  expectedType: T,
): Trigger<T> {
  const last: HandledEvent | undefined = result.events[result.events.length - 1];
  if (!last || result.events.length !== 1 || last.type !== expectedType) {
    throw new Error(
      `expected exactly one ${expectedType}, got ${result.events.map((e) => e.type).join(', ') || 'nothing'}`,
    );
  }
  return decodeEventOf({ ...last, position: result.position }, [expectedType]);
}
