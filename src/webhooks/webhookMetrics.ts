import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { AttemptOutcome } from './httpSender.js';

/**
 * Operators' instruments for outbound webhooks (docs/webhooks.md, "Operating"). The alert on webhook
 * failures reads `ledger_webhook_deliveries_total{outcome!="succeeded"}` against all attempts;
 * `ledger_webhook_endpoints_disabled_total` counts endpoints given up on.
 */
export interface WebhookMetrics {
  attempts: Counter<'outcome' | 'trigger'>;
  latency: Histogram<'outcome'>;
  exhausted: Counter<string>;
  endpointsDisabled: Counter<'reason'>;
  setPendingSource(source: () => Promise<number>): void;
}

const byRegistry = new WeakMap<Registry, WebhookMetrics>();

export function webhookMetrics(registry: Registry, prefix = 'ledger_'): WebhookMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  let pendingSource: (() => Promise<number>) | undefined;
  const metrics: WebhookMetrics = {
    attempts: new Counter({
      name: `${prefix}webhook_deliveries_total`,
      help: 'Webhook delivery attempts by outcome (succeeded, http_error, redirect, timeout, network_error, address_not_allowed) and trigger (automatic, manual)',
      labelNames: ['outcome', 'trigger'] as const,
      registers: [registry],
    }),
    latency: new Histogram({
      name: `${prefix}webhook_delivery_duration_seconds`,
      help: 'Webhook delivery attempt latency (connect to response headers and excerpt) by outcome',
      labelNames: ['outcome'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    exhausted: new Counter({
      name: `${prefix}webhook_deliveries_exhausted_total`,
      help: 'Webhook deliveries given up after their retry window (3 days by default)',
      registers: [registry],
    }),
    endpointsDisabled: new Counter({
      name: `${prefix}webhook_endpoints_disabled_total`,
      help: 'Webhook endpoints disabled automatically (reason failing) after failing for the whole retry window',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    setPendingSource(source) {
      pendingSource = source;
    },
  };
  new Gauge({
    name: `${prefix}webhook_deliveries_pending`,
    help: 'Webhook deliveries waiting for an attempt (due or scheduled for a retry)',
    registers: [registry],
    async collect() {
      if (!pendingSource) return;
      try {
        this.set(await pendingSource());
      } catch {
        // A failing source must not break the scrape.
      }
    },
  });
  byRegistry.set(registry, metrics);
  return metrics;
}

export type { AttemptOutcome };
