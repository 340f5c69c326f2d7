import pino, { type Logger } from 'pino';

/**
 * pino JSON logs. Secrets and card data never reach a log line: the redact list covers the places they
 * could appear (headers, Stripe payloads), and callers log ids, not objects they did not build.
 */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { service: 'wemaster-ledger', ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers["stripe-signature"]',
        'req.headers.cookie',
        '*.jwtSecret',
        '*.secretKey',
        '*.webhookSecret',
        '*.client_secret',
        '*.clientSecret',
        '*.card',
        '*.payment_method_details',
      ],
      censor: '[redacted]',
    },
  });
}

export type { Logger };
