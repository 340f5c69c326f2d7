import type { WebhookEndpoint } from '../../domain/webhookEndpoints.js';
import type {
  Attempt,
  Delivery,
  DeliveryStatus,
  DeliveryStore,
  EndpointHealth,
} from '../../webhooks/deliveryStore.js';
import type { ManualRetryResult } from '../../webhooks/dispatcher.js';
import type { WebhookEndpoints } from '../../webhooks/endpoints.js';
import type { Policy } from '../auth.js';
import { ApiError } from '../problem.js';
import { DEFAULT_PAGE_LIMIT, errorResponses } from '../schemas.js';
import type { RouteModule } from '../v1/routeKit.js';
import {
  CreateWebhookEndpointBody,
  DeliveryListQuery,
  DeliveryParams,
  EndpointParams,
  RotateSecretBody,
  ref,
  WEBHOOK_SCHEMAS,
  WebhookDeliveryOut,
  WebhookDeliveryPage,
  WebhookEndpointChanged,
  WebhookEndpointDeleted,
  WebhookEndpointList,
  WebhookEndpointOut,
  WebhookEndpointWithSecret,
  WebhookRetryResult,
} from '../webhookSchemas.js';

/** Tenant admins manage endpoints; finance admins may read them and their delivery logs. */
const MANAGE: Policy = [{ role: 'tenant_admin' }];
const READ: Policy = [{ role: 'tenant_admin' }, { role: 'finance_admin' }];

export interface WebhookRoutesOptions {
  endpoints: WebhookEndpoints;
  deliveries: DeliveryStore;
  /** Manual redelivery (the dispatcher). */
  retry(tenantId: string, endpointId: string, deliveryId: string): Promise<ManualRetryResult>;
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export function endpointOut(endpoint: WebhookEndpoint, health: EndpointHealth) {
  return {
    id: endpoint.endpointId,
    url: endpoint.url,
    eventTypes: endpoint.eventTypes,
    description: endpoint.description,
    apiVersion: endpoint.apiVersion,
    status: endpoint.status,
    disabled: endpoint.disabled,
    secrets: endpoint.secrets.map((s) => ({
      id: s.secretId,
      createdAt: s.createdAt,
      expiresAt: s.expiresAt,
    })),
    health: {
      failingSince: iso(health.failingSince),
      lastSuccessAt: iso(health.lastSuccessAt),
      lastFailureAt: iso(health.lastFailureAt),
      consecutiveFailures: health.consecutiveFailures,
      lastError: health.lastError,
    },
    createdAt: endpoint.createdAt,
    updatedAt: endpoint.updatedAt,
  };
}

function attemptOut(a: Attempt) {
  return { ...a, startedAt: a.startedAt.toISOString() };
}

function deliveryOut(d: Delivery, detail?: { attempts: Attempt[] }) {
  return {
    id: d.deliveryId,
    endpointId: d.endpointId,
    eventId: d.eventId,
    eventType: d.eventType,
    status: d.status,
    attempts: d.attempts,
    nextAttemptAt: iso(d.nextAttemptAt),
    createdAt: d.createdAt.toISOString(),
    lastAttemptAt: iso(d.lastAttemptAt),
    lastStatusCode: d.lastStatusCode,
    lastError: d.lastError,
    ...(detail ? { payload: d.payload, attemptLog: detail.attempts.map(attemptOut) } : {}),
  };
}

function encodeCursor(d: Delivery): string {
  return Buffer.from(`${d.createdAt.toISOString()}|${d.deliveryId}`).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: Date; deliveryId: string } {
  const [at, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(at ?? '');
  if (Number.isNaN(createdAt.getTime()) || !id || !/^[0-9a-f-]{36}$/.test(id)) {
    throw new ApiError('validation_failed', 'cursor is not one this API returned');
  }
  return { createdAt, deliveryId: id };
}

/**
 * Outbound webhook endpoints and their delivery logs (docs/webhooks.md), a route module of the /v1
 * context. An Idempotency-Key on the POSTs makes them safe to retry (same key: same endpoint, same
 * secret).
 */
export function webhookRoutes(options: WebhookRoutesOptions): RouteModule {
  const { endpoints, deliveries } = options;
  return async (app, { kit }) => {
    for (const schema of WEBHOOK_SCHEMAS) app.addSchema(schema);
    const tenant = (request: Parameters<typeof kit.principal>[0]) => kit.principal(request).tenantId;
    const out = async (tenantId: string, endpoint: WebhookEndpoint) =>
      endpointOut(endpoint, await deliveries.health(tenantId, endpoint.endpointId));
    const found = async (tenantId: string, endpointId: string) => {
      const endpoint = await endpoints.get(tenantId, endpointId);
      if (!endpoint) throw new ApiError('not_found', `no webhook endpoint ${endpointId}`);
      return endpoint;
    };

    app.post(
      '/webhook-endpoints',
      {
        config: { policy: MANAGE },
        schema: {
          operationId: 'createWebhookEndpoint',
          tags: ['webhooks'],
          summary: 'Register a webhook endpoint (answers its signing secret, once)',
          body: ref(CreateWebhookEndpointBody),
          response: { 201: ref(WebhookEndpointWithSecret), ...errorResponses(409, 422) },
        },
      },
      async (request, reply) => {
        const body = request.body as {
          url: string;
          eventTypes: string[];
          description?: string | null;
          apiVersion?: string;
        };
        const result = await kit.run('createWebhookEndpoint', () =>
          endpoints.register(kit.commandContext(request), body),
        );
        return reply.code(201).send({
          endpoint: await out(tenant(request), result.endpoint),
          secret: result.secret,
          position: String(result.position),
        });
      },
    );

    app.get(
      '/webhook-endpoints',
      {
        config: { policy: READ },
        schema: {
          operationId: 'listWebhookEndpoints',
          tags: ['webhooks'],
          summary: "The tenant's webhook endpoints (disabled ones say why)",
          response: { 200: ref(WebhookEndpointList), ...errorResponses() },
        },
      },
      async (request) => {
        const t = tenant(request);
        const list = await endpoints.list(t);
        return { items: await Promise.all(list.map((e) => out(t, e))) };
      },
    );

    app.get(
      '/webhook-endpoints/:endpointId',
      {
        config: { policy: READ },
        schema: {
          operationId: 'getWebhookEndpoint',
          tags: ['webhooks'],
          summary: 'One webhook endpoint with its delivery health',
          params: EndpointParams,
          response: { 200: ref(WebhookEndpointOut), ...errorResponses() },
        },
      },
      async (request) => {
        const t = tenant(request);
        return out(t, await found(t, (request.params as { endpointId: string }).endpointId));
      },
    );

    for (const [action, operationId, summary] of [
      [
        'disable',
        'disableWebhookEndpoint',
        'Disable an endpoint: nothing is delivered to it until it is enabled',
      ],
      [
        'enable',
        'enableWebhookEndpoint',
        'Enable an endpoint: what waited is delivered, with a fresh retry window',
      ],
    ] as const) {
      app.post(
        `/webhook-endpoints/:endpointId/${action}`,
        {
          config: { policy: MANAGE },
          schema: {
            operationId,
            tags: ['webhooks'],
            summary,
            params: EndpointParams,
            response: { 200: ref(WebhookEndpointChanged), ...errorResponses(409, 422) },
          },
        },
        async (request) => {
          const { endpointId } = request.params as { endpointId: string };
          const ctx = kit.commandContext(request);
          const result = await kit.run(operationId, () =>
            action === 'disable' ? endpoints.disable(ctx, endpointId) : endpoints.enable(ctx, endpointId),
          );
          return { endpoint: await out(ctx.tenantId, result.endpoint), position: String(result.position) };
        },
      );
    }

    app.post(
      '/webhook-endpoints/:endpointId/rotate-secret',
      {
        config: { policy: MANAGE },
        schema: {
          operationId: 'rotateWebhookEndpointSecret',
          tags: ['webhooks'],
          summary: 'A new signing secret; the previous one keeps signing for graceHours (default 24)',
          params: EndpointParams,
          body: ref(RotateSecretBody),
          response: { 200: ref(WebhookEndpointWithSecret), ...errorResponses(409, 422) },
        },
      },
      async (request) => {
        const { endpointId } = request.params as { endpointId: string };
        const ctx = kit.commandContext(request);
        const body = (request.body ?? {}) as { graceHours?: number };
        const result = await kit.run('rotateWebhookEndpointSecret', () =>
          endpoints.rotateSecret(
            ctx,
            endpointId,
            body.graceHours === undefined ? {} : { graceHours: body.graceHours },
          ),
        );
        return {
          endpoint: await out(ctx.tenantId, result.endpoint),
          secret: result.secret,
          position: String(result.position),
        };
      },
    );

    app.delete(
      '/webhook-endpoints/:endpointId',
      {
        config: { policy: MANAGE },
        schema: {
          operationId: 'deleteWebhookEndpoint',
          tags: ['webhooks'],
          summary: 'Delete an endpoint (its delivery log stays until retention removes it)',
          params: EndpointParams,
          response: { 200: ref(WebhookEndpointDeleted), ...errorResponses(409, 422) },
        },
      },
      async (request) => {
        const { endpointId } = request.params as { endpointId: string };
        const result = await kit.run('deleteWebhookEndpoint', () =>
          endpoints.delete(kit.commandContext(request), endpointId),
        );
        return { deleted: true as const, position: String(result.position) };
      },
    );

    app.get(
      '/webhook-endpoints/:endpointId/deliveries',
      {
        config: { policy: READ },
        schema: {
          operationId: 'listWebhookDeliveries',
          tags: ['webhooks'],
          summary: "An endpoint's delivery log, newest first",
          params: EndpointParams,
          querystring: DeliveryListQuery,
          response: { 200: ref(WebhookDeliveryPage), ...errorResponses() },
        },
      },
      async (request) => {
        const t = tenant(request);
        const { endpointId } = request.params as { endpointId: string };
        const query = request.query as { status?: DeliveryStatus; limit?: string; cursor?: string };
        const limit = query.limit === undefined ? DEFAULT_PAGE_LIMIT : Number(query.limit);
        const items = await deliveries.list(t, endpointId, {
          limit: limit + 1,
          ...(query.status ? { status: query.status } : {}),
          ...(query.cursor ? { before: decodeCursor(query.cursor) } : {}),
        });
        const page = items.slice(0, limit);
        return {
          items: page.map((d) => deliveryOut(d)),
          nextCursor: items.length > limit ? encodeCursor(page[page.length - 1]!) : null,
        };
      },
    );

    app.get(
      '/webhook-endpoints/:endpointId/deliveries/:deliveryId',
      {
        config: { policy: READ },
        schema: {
          operationId: 'getWebhookDelivery',
          tags: ['webhooks'],
          summary: 'One delivery: its payload and every attempt (status, latency, response code)',
          params: DeliveryParams,
          response: { 200: ref(WebhookDeliveryOut), ...errorResponses() },
        },
      },
      async (request) => {
        const { endpointId, deliveryId } = request.params as { endpointId: string; deliveryId: string };
        const delivery = await deliveries.get(tenant(request), endpointId, deliveryId);
        if (!delivery)
          throw new ApiError('not_found', `no delivery ${deliveryId} of webhook endpoint ${endpointId}`);
        return deliveryOut(delivery, { attempts: await deliveries.attempts(deliveryId) });
      },
    );

    app.post(
      '/webhook-endpoints/:endpointId/deliveries/:deliveryId/retry',
      {
        config: { policy: MANAGE },
        schema: {
          operationId: 'retryWebhookDelivery',
          tags: ['webhooks'],
          summary: 'Deliver again now (one attempt, answered with its outcome)',
          params: DeliveryParams,
          response: { 200: ref(WebhookRetryResult), ...errorResponses(422) },
        },
      },
      async (request) => {
        const t = tenant(request);
        const { endpointId, deliveryId } = request.params as { endpointId: string; deliveryId: string };
        await found(t, endpointId);
        const result = await kit.run('retryWebhookDelivery', () => options.retry(t, endpointId, deliveryId));
        return { delivery: deliveryOut(result.delivery), attempt: attemptOut(result.attempt) };
      },
    );
  };
}
