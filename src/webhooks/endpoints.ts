import type { CommandHandler } from '../commands/commandHandler.js';
import type { CommandContext } from '../commands/context.js';
import { stableHash } from '../commands/stableHash.js';
import { DomainError } from '../domain/errors.js';
import { deterministicId } from '../domain/ids.js';
import { streamName } from '../domain/streams.js';
import { validationFailed } from '../domain/validate.js';
import {
  requireWebhookUrl,
  WEBHOOK_ENDPOINTS_ID,
  type WebhookEndpoint,
  type WebhookEndpointCommand,
  type WebhookEndpointsState,
  type WebhookFailure,
  webhookEndpointsDecider,
} from '../domain/webhookEndpoints.js';
import {
  AddressNotAllowedError,
  type AddressPolicy,
  checkTarget,
  type Resolver,
  systemResolver,
  UnresolvableHostError,
} from './addressPolicy.js';
import {
  CURRENT_WEBHOOK_API_VERSION,
  isPublicEventType,
  WEBHOOK_API_VERSIONS,
  type WebhookApiVersion,
} from './publicEvents.js';
import type { WebhookSecrets } from './secrets.js';

export const endpointsStream = (tenantId: string): string =>
  streamName('webhook', tenantId, WEBHOOK_ENDPOINTS_ID);

/** Default grace period of a rotated-away secret (Stripe's default as well). */
export const DEFAULT_SECRET_GRACE_HOURS = 24;

/** The actor of what the delivery machinery itself decides (disabling a failing endpoint). */
export const DISPATCHER_ACTOR = { id: 'webhook-dispatcher', role: 'service' } as const;

export interface RegisterEndpointInput {
  url: string;
  eventTypes: string[];
  description?: string | null;
  apiVersion?: string;
}

export interface EndpointWithSecret {
  endpoint: WebhookEndpoint;
  /** The signing secret: shown when created and when rotated, never stored (secrets.ts). */
  secret: string;
  position: bigint;
}

export interface WebhookEndpointsOptions {
  handler: CommandHandler;
  clock: () => Date;
  policy: AddressPolicy;
  secrets: WebhookSecrets;
  resolver?: Resolver;
}

/**
 * The write side of webhook endpoints (register, disable, enable, rotate the secret, delete) and its
 * reads, all on the tenant's endpoints stream through the generic command handler (cached fold).
 * A URL is checked here against the address policy, on its literal address or every address its name
 * resolves to; the dispatcher checks again on every connection.
 */
export class WebhookEndpoints {
  private readonly resolver: Resolver;

  constructor(private readonly options: WebhookEndpointsOptions) {
    this.resolver = options.resolver ?? systemResolver;
  }

  async list(tenantId: string): Promise<WebhookEndpoint[]> {
    const state = await this.state(tenantId);
    return [...state.endpoints.values()].sort((a, b) =>
      a.createdAt === b.createdAt
        ? a.endpointId.localeCompare(b.endpointId)
        : a.createdAt.localeCompare(b.createdAt),
    );
  }

  async get(tenantId: string, endpointId: string): Promise<WebhookEndpoint | null> {
    return (await this.state(tenantId)).endpoints.get(endpointId) ?? null;
  }

  async state(tenantId: string): Promise<WebhookEndpointsState> {
    const { state } = await this.options.handler.load(webhookEndpointsDecider, endpointsStream(tenantId));
    return state;
  }

  /** The signing secret of one secret id (the dispatcher signs with these). */
  secretFor(tenantId: string, endpointId: string, secretId: string): string {
    return this.options.secrets.secretFor(tenantId, endpointId, secretId);
  }

  async register(ctx: CommandContext, input: RegisterEndpointInput): Promise<EndpointWithSecret> {
    const url = requireWebhookUrl(input.url);
    for (const type of input.eventTypes) {
      if (type !== '*' && !isPublicEventType(type)) {
        validationFailed(`unknown event type ${JSON.stringify(type)} (see docs/webhooks.md)`, {
          field: 'eventTypes',
        });
      }
    }
    const apiVersion = input.apiVersion ?? CURRENT_WEBHOOK_API_VERSION;
    if (!(WEBHOOK_API_VERSIONS as readonly string[]).includes(apiVersion)) {
      validationFailed(`apiVersion must be one of ${WEBHOOK_API_VERSIONS.join(', ')}`, {
        field: 'apiVersion',
      });
    }
    await this.checkAddress(url);
    const endpointId = `we_${compactId('webhook-endpoint', ctx.tenantId, ctx.idempotencyKey)}`;
    const secretId = `ws_${compactId('webhook-secret', ctx.tenantId, endpointId, '0')}`;
    const result = await this.run(
      ctx,
      {
        type: 'RegisterWebhookEndpoint',
        endpointId,
        url,
        eventTypes: input.eventTypes,
        description: input.description ?? null,
        apiVersion: apiVersion as WebhookApiVersion,
        secretId,
        actor: { ...ctx.actor },
        at: this.now(),
      },
      { op: 'register', input: { ...input, url } },
    );
    const endpoint = result.state.endpoints.get(endpointId);
    // A replayed request whose endpoint was deleted since.
    if (!endpoint) throw new DomainError('not_found', `webhook endpoint ${endpointId} was deleted`);
    return {
      endpoint,
      secret: this.secretFor(ctx.tenantId, endpointId, secretId),
      position: result.position,
    };
  }

  async disable(
    ctx: CommandContext,
    endpointId: string,
  ): Promise<{ endpoint: WebhookEndpoint; position: bigint }> {
    return this.change(ctx, endpointId, {
      type: 'DisableWebhookEndpoint',
      endpointId,
      reason: 'by_admin',
      failure: null,
      actor: { ...ctx.actor },
      at: this.now(),
    });
  }

  async enable(
    ctx: CommandContext,
    endpointId: string,
  ): Promise<{ endpoint: WebhookEndpoint; position: bigint }> {
    return this.change(ctx, endpointId, {
      type: 'EnableWebhookEndpoint',
      endpointId,
      actor: { ...ctx.actor },
      at: this.now(),
    });
  }

  async rotateSecret(
    ctx: CommandContext,
    endpointId: string,
    input: { graceHours?: number },
  ): Promise<EndpointWithSecret> {
    const secretId = `ws_${compactId('webhook-secret', ctx.tenantId, endpointId, ctx.idempotencyKey)}`;
    const result = await this.run(
      ctx,
      {
        type: 'RotateWebhookEndpointSecret',
        endpointId,
        secretId,
        graceHours: input.graceHours ?? DEFAULT_SECRET_GRACE_HOURS,
        actor: { ...ctx.actor },
        at: this.now(),
      },
      { op: 'rotate', endpointId, input },
    );
    const endpoint = result.state.endpoints.get(endpointId);
    if (!endpoint) throw new DomainError('not_found', `no webhook endpoint ${endpointId}`);
    return {
      endpoint,
      secret: this.secretFor(ctx.tenantId, endpointId, secretId),
      position: result.position,
    };
  }

  async delete(ctx: CommandContext, endpointId: string): Promise<{ position: bigint }> {
    const result = await this.run(
      ctx,
      { type: 'DeleteWebhookEndpoint', endpointId, actor: { ...ctx.actor }, at: this.now() },
      { op: 'delete', endpointId },
    );
    return { position: result.position };
  }

  /** The dispatcher gives up on an endpoint: once per failing delivery (its id is in the key). */
  async disableFailing(tenantId: string, endpointId: string, failure: WebhookFailure): Promise<boolean> {
    const ctx: CommandContext = {
      tenantId,
      actor: { ...DISPATCHER_ACTOR },
      idempotencyKey: `webhook-auto-disable:${endpointId}:${failure.deliveryId}`,
      correlationId: failure.deliveryId,
      causationId: failure.deliveryId,
    };
    const result = await this.run(
      ctx,
      {
        type: 'DisableWebhookEndpoint',
        endpointId,
        reason: 'failing',
        failure,
        actor: { ...DISPATCHER_ACTOR },
        at: this.now(),
      },
      { op: 'auto-disable', endpointId, deliveryId: failure.deliveryId },
    );
    return result.events.length > 0 && !result.replayed;
  }

  private async change(
    ctx: CommandContext,
    endpointId: string,
    command: WebhookEndpointCommand,
  ): Promise<{ endpoint: WebhookEndpoint; position: bigint }> {
    const result = await this.run(ctx, command, { op: command.type, endpointId });
    const endpoint = result.state.endpoints.get(endpointId);
    if (!endpoint) throw new DomainError('not_found', `no webhook endpoint ${endpointId}`);
    return { endpoint, position: result.position };
  }

  private run(ctx: CommandContext, command: WebhookEndpointCommand, payload: unknown) {
    return this.options.handler.handle(webhookEndpointsDecider, endpointsStream(ctx.tenantId), command, ctx, {
      commandType: command.type,
      payloadHash: stableHash(payload),
    });
  }

  private async checkAddress(url: string): Promise<void> {
    try {
      await checkTarget(new URL(url), this.options.policy, this.resolver);
    } catch (error) {
      if (error instanceof AddressNotAllowedError) {
        validationFailed(
          `${error.message}; webhooks go only to public addresses unless the operator allows a network (WEBHOOK_ALLOWED_NETWORKS)`,
          { field: 'url', reason: 'address_not_allowed' },
        );
      }
      if (error instanceof UnresolvableHostError) {
        validationFailed(`${error.host} does not resolve`, { field: 'url', reason: 'unresolvable_host' });
      }
      throw error;
    }
  }

  private now(): string {
    return this.options.clock().toISOString();
  }
}

/** A deterministic id as 32 hex digits (fits entity ids with a short prefix). */
export function compactId(...parts: string[]): string {
  return deterministicId(...parts).replaceAll('-', '');
}
