import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The signature on every webhook delivery (docs/webhooks.md, "Verifying signatures"), Stripe's scheme:
 *
 *   WeMaster-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>[,v1=<...>]
 *
 * One `v1` per secret that signs at that moment: during a rotation's grace period both the new and the
 * previous secret sign, so a receiver holding either verifies. The timestamp is signed with the body,
 * so a captured delivery cannot be replayed later than the receiver's tolerance.
 */
export const SIGNATURE_HEADER = 'wemaster-signature';
export const SIGNATURE_SCHEME = 'v1';
/** Receivers should refuse timestamps further than this from their clock (what our verifier does). */
export const DEFAULT_TOLERANCE_SECONDS = 300;

export function signatureOf(secret: string, timestampSeconds: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestampSeconds}.${body}`, 'utf8').digest('hex');
}

export function signatureHeader(secrets: readonly string[], timestampSeconds: number, body: string): string {
  if (secrets.length === 0) throw new Error('a delivery needs at least one signing secret');
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds <= 0) {
    throw new Error(`bad signature timestamp ${timestampSeconds}`);
  }
  return [
    `t=${timestampSeconds}`,
    ...secrets.map((secret) => `${SIGNATURE_SCHEME}=${signatureOf(secret, timestampSeconds, body)}`),
  ].join(',');
}

/** Verifies a header as a receiver would (used by tests; receivers use the snippet in the docs). */
export function verifySignature(
  header: string,
  body: string,
  secret: string,
  options: { nowSeconds: number; toleranceSeconds?: number },
): boolean {
  let timestamp: number | undefined;
  const candidates: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't' && /^\d{1,15}$/.test(value)) timestamp = Number(value);
    else if (key === SIGNATURE_SCHEME && /^[0-9a-f]{64}$/.test(value)) candidates.push(value);
  }
  if (timestamp === undefined || candidates.length === 0) return false;
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(options.nowSeconds - timestamp) > tolerance) return false;
  const expected = Buffer.from(signatureOf(secret, timestamp, body), 'hex');
  return candidates.some((c) => timingSafeEqual(Buffer.from(c, 'hex'), expected));
}
