import type { Registry } from 'prom-client';
import type { CheckpointStore } from '../commands/checkpointStore.js';
import type { Logger } from '../commands/logger.js';
import {
  type ProcessManagerHandle,
  type ProcessManagerRunnerOptions,
  startProcessManagerRunner,
} from '../commands/processManagerRunner.js';
import { classifyStepFailure } from '../commands/processManagers.js';
import { decodeEventOf } from '../domain/events.js';
import { deterministicId } from '../domain/ids.js';
import { fold } from '../domain/index.js';
import { parseStreamName } from '../domain/streams.js';
import {
  WEBHOOK_ENDPOINT_EVENT_TYPES,
  type WebhookEndpointEvent,
  type WebhookEndpointsState,
  webhookEndpointsDecider,
} from '../domain/webhookEndpoints.js';
import { type EventStore, type RecordedEvent, StreamNotFoundError } from '../eventstore/port.js';
import type { DeliveryStore, NewDelivery } from './deliveryStore.js';
import { endpointsStream } from './endpoints.js';
import { MAX_WEBHOOK_BODY_BYTES } from './httpSender.js';
import {
  deliveryBody,
  publicEventOf,
  SOURCE_EVENT_TYPES,
  subscribes,
  type WebhookApiVersion,
} from './publicEvents.js';

/**
 * The fan-out: one checkpointed consumer of the event log (the project's process-manager runner) that
 * turns each domain event with a public type into one delivery row per endpoint subscribed to it. It
 * follows the endpoints streams in the same log order, so an endpoint receives exactly the events after
 * its registration and none while it is disabled, and it pauses, resumes or cancels an endpoint's
 * queue when the endpoint is disabled, enabled or deleted. It never waits on HTTP: each endpoint's
 * queue is worked off by the dispatcher on its own, so one dead endpoint never delays another.
 *
 * Exactly-once effect: the checkpoint is saved after each handled event, and a delivery is keyed by
 * (endpoint, public event id), so an event handled again after a crash adds nothing.
 */
export interface WebhookFanoutOptions {
  store: EventStore;
  checkpoints: CheckpointStore;
  deliveries: DeliveryStore;
  clock: () => Date;
  /** Called after deliveries were added (the dispatcher in this process looks at once). */
  onEnqueued?: () => void;
  name?: string;
  logger?: Logger;
  registry?: Registry;
  /** Tenants whose endpoint sets are kept in memory (LRU; evicted ones are read again). */
  cacheMaxTenants?: number;
  tuning?: Pick<ProcessManagerRunnerOptions, 'maxAttemptsPerEvent' | 'backoff' | 'restartDelayMs'>;
}

export const WEBHOOK_FANOUT_SUBSCRIBER = 'webhook-fanout';
const ENDPOINT_EVENT_TYPES: ReadonlySet<string> = new Set(WEBHOOK_ENDPOINT_EVENT_TYPES);

interface CachedEndpoints {
  state: WebhookEndpointsState;
  /** Position of the last endpoints event folded into `state`. */
  position: bigint;
}

export function startWebhookFanout(options: WebhookFanoutOptions): ProcessManagerHandle {
  const cache = new Map<string, CachedEndpoints>();
  const cacheMax = options.cacheMaxTenants ?? 10_000;

  /** The tenant's endpoints as of `position` (every endpoints event at or before it folded in). */
  async function endpointsAt(tenantId: string, position: bigint): Promise<WebhookEndpointsState> {
    const cached = cache.get(tenantId);
    if (cached) {
      cache.delete(tenantId);
      cache.set(tenantId, cached);
      return cached.state;
    }
    let events: RecordedEvent[] = [];
    try {
      events = await readWholeStream(options.store, endpointsStream(tenantId));
    } catch (error) {
      if (!(error instanceof StreamNotFoundError)) throw error;
    }
    const upTo = events.filter((e) => e.position <= position);
    const state = fold(webhookEndpointsDecider, upTo.map(endpointEventOf));
    cache.set(tenantId, { state, position: upTo.at(-1)?.position ?? -1n });
    while (cache.size > cacheMax) cache.delete(cache.keys().next().value as string);
    return state;
  }

  async function applyEndpointEvent(event: RecordedEvent, tenantId: string): Promise<void> {
    const cached = cache.get(tenantId);
    if (cached && event.position > cached.position) {
      cached.state = webhookEndpointsDecider.evolve(cached.state, endpointEventOf(event));
      cached.position = event.position;
    }
    const endpointId = endpointEventOf(event).data.endpointId;
    const now = options.clock();
    if (event.type === 'WebhookEndpointDisabled') await options.deliveries.pauseEndpoint(endpointId, now);
    if (event.type === 'WebhookEndpointEnabled') {
      await options.deliveries.resumeEndpoint(endpointId, now);
      options.onEnqueued?.();
    }
    if (event.type === 'WebhookEndpointDeleted') await options.deliveries.cancelEndpoint(endpointId, now);
  }

  async function handle(event: RecordedEvent): Promise<void> {
    const stream = parseStreamName(event.streamName);
    if (!stream) return;
    const tenantId = stream.tenantId;
    // An endpoints event changes the set first, so e.g. a disabled endpoint is not told of itself.
    if (ENDPOINT_EVENT_TYPES.has(event.type)) await applyEndpointEvent(event, tenantId);
    const published = publicEventOf(event);
    if (!published) return;
    const state = await endpointsAt(tenantId, event.position);
    const deliveries: NewDelivery[] = [];
    for (const endpoint of state.endpoints.values()) {
      if (endpoint.status !== 'enabled' || !subscribes(endpoint.eventTypes, published.type)) continue;
      const payload = deliveryBody(published, endpoint.apiVersion as WebhookApiVersion);
      if (Buffer.byteLength(payload) > MAX_WEBHOOK_BODY_BYTES) {
        throw new Error(
          `public event ${published.id} is ${Buffer.byteLength(payload)} bytes: over the bound`,
        );
      }
      deliveries.push({
        deliveryId: deterministicId('webhook-delivery', endpoint.endpointId, published.id),
        tenantId,
        endpointId: endpoint.endpointId,
        eventId: published.id,
        eventType: published.type,
        sourceStream: event.streamName,
        sourcePosition: event.position,
        payload,
      });
    }
    if (deliveries.length === 0) return;
    await options.deliveries.enqueue(deliveries, options.clock());
    options.onEnqueued?.();
  }

  return startProcessManagerRunner({
    name: options.name ?? WEBHOOK_FANOUT_SUBSCRIBER,
    store: options.store,
    checkpoints: options.checkpoints,
    filter: { eventTypes: [...new Set([...SOURCE_EVENT_TYPES, ...WEBHOOK_ENDPOINT_EVENT_TYPES])] },
    handle,
    classify: classifyStepFailure,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.registry ? { registry: options.registry } : {}),
    ...options.tuning,
  });
}

async function readWholeStream(store: EventStore, name: string): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  for (;;) {
    const page = await store.readStream(name, {
      fromRevision: BigInt(out.length),
      maxCount: 500,
      direction: 'forwards',
    });
    out.push(...page);
    if (page.length < 500) return out;
  }
}

/** An endpoints event, decoded (type, stream, metadata and data checked against its schema). */
function endpointEventOf(event: RecordedEvent): WebhookEndpointEvent {
  return decodeEventOf(event, WEBHOOK_ENDPOINT_EVENT_TYPES);
}
