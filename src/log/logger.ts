import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * pino JSON logs. Secrets and card data never reach a log line: the redact list covers the places they
 * could appear (headers, Stripe payloads), and callers log ids, not objects they did not build.
 */
export function createLogger(
  level: string,
  bindings: Record<string, unknown> = {},
  destination?: DestinationStream,
): Logger {
  const options: pino.LoggerOptions = {
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
        '*.connectWebhookSecret',
        '*.client_secret',
        '*.clientSecret',
        '*.card',
        '*.payment_method_details',
      ],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

/**
 * stdout as pino writes it (synchronously, as pino's default), with `onError` told when it fails:
 * pino itself silences EPIPE, which would leave a process whose output is gone running unheard.
 */
export function stdoutDestination(onError: (error: unknown) => void): DestinationStream {
  const destination = pino.destination({ dest: 1, sync: true });
  destination.on('error', onError);
  return destination;
}

export type { Logger };
