import { createHmac } from 'node:crypto';

/**
 * Webhook signing secrets are derived, never stored: HMAC-SHA256 of the operator's WEBHOOK_SECRET_KEY
 * over the tenant, endpoint and secret id. Events name only the secret id, so the event log, its exports
 * and backups hold nothing that signs; restoring the log with the same key restores every secret, and
 * a leaked secret is replaced by rotating (a new secret id).
 */
export const MIN_SECRET_KEY_BYTES = 32;

export interface WebhookSecrets {
  secretFor(tenantId: string, endpointId: string, secretId: string): string;
}

export function createWebhookSecrets(secretKey: string): WebhookSecrets {
  if (Buffer.byteLength(secretKey) < MIN_SECRET_KEY_BYTES) {
    throw new Error(`the webhook secret key must be at least ${MIN_SECRET_KEY_BYTES} bytes`);
  }
  return {
    secretFor(tenantId, endpointId, secretId) {
      const mac = createHmac('sha256', secretKey)
        .update(`wemaster-webhook-secret\u0000${tenantId}\u0000${endpointId}\u0000${secretId}`, 'utf8')
        .digest('base64url');
      return `whsec_${mac}`;
    },
  };
}
