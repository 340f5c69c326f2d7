import { deterministicId } from '../domain/ids.js';
import type { EventMetadata, JsonObject } from '../eventstore/port.js';
import type { HandledEvent, HandleResult } from './commandHandler.js';
import type { CommandContext } from './context.js';

/** An event that starts the next step of a flow: just appended by the command path, or read by a process manager. */
export interface Trigger {
  id: string;
  type: string;
  streamName: string;
  position: bigint;
  data: JsonObject;
  metadata: EventMetadata;
}

/**
 * The context of a step triggered by `trigger`: its idempotency key is derived from the trigger's id, so
 * the command path and a process manager that both perform the step produce the same event ids (the
 * second appends nothing). Actor and correlation carry over; the trigger is the cause.
 */
export function stepContext(trigger: Trigger, step: string): CommandContext {
  return {
    tenantId: trigger.metadata.tenantId,
    actor: { id: trigger.metadata.actor.id, role: trigger.metadata.actor.role },
    idempotencyKey: `${step}:${trigger.id}`,
    correlationId: trigger.metadata.correlationId,
    causationId: trigger.id,
  };
}

/** A step is fully determined by its trigger, so the trigger id is its payload identity. */
export const stepPayloadHash = (trigger: Trigger, step: string) => `${step}:${trigger.id}`;

/** Deterministic journal entry id of a command's entry. */
export const entryIdFor = (ctx: CommandContext, commandType: string) =>
  deterministicId('entry', ctx.tenantId, commandType, ctx.idempotencyKey);

/** The single event of a command as a trigger for the next step. */
export function triggerOf(result: HandleResult<unknown>, expectedType: string): Trigger {
  const last: HandledEvent | undefined = result.events[result.events.length - 1];
  if (!last || result.events.length !== 1 || last.type !== expectedType) {
    throw new Error(
      `expected exactly one ${expectedType}, got ${result.events.map((e) => e.type).join(', ') || 'nothing'}`,
    );
  }
  return { ...last, position: result.position };
}
