import pg from 'pg';

export type ListenState = 'listening' | 'lost';

export interface PgListenerOptions {
  /** How often the connection is proven alive with a round trip (a half-open socket raises nothing). */
  heartbeatMs: number;
  /** Longest LISTEN or a heartbeat may take before the connection is declared lost. */
  queryTimeoutMs: number;
  /** Wait before connecting again after a loss. */
  reconnectDelayMs: number;
  /** Longest a connection attempt may take. */
  connectTimeoutMs: number;
}

export const DEFAULT_PG_LISTENER_OPTIONS: PgListenerOptions = {
  heartbeatMs: 5_000,
  queryTimeoutMs: 3_000,
  reconnectDelayMs: 1_000,
  connectTimeoutMs: 5_000,
};

/** Shown in pg_stat_activity, so operators (and tests) can tell the listener from pooled connections. */
export const LISTENER_APPLICATION_NAME = 'ledger_listener';

/** Channel names are spliced into LISTEN: identifiers only. */
export const NOTIFY_CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * One dedicated LISTEN connection for every channel of a process, re-established after a loss.
 *
 * Subscribers that derive state from notifications (caches) must know when they may have missed some:
 * 'lost' is reported as soon as the connection is known dead, 'listening' once every channel is
 * LISTENed on a new one. A connection that dies without a FIN/RST (NAT idle timeout, partition) raises
 * no error, so a heartbeat query proves it alive every heartbeatMs; one that does not answer within
 * queryTimeoutMs is declared lost. Connects and LISTENs run one at a time, so concurrent subscribers
 * share one connection and nobody is told 'listening' before its own channel is.
 */
export class PgListener {
  private readonly channels = new Map<string, Set<(payload: string) => void>>();
  private readonly stateListeners = new Set<(state: ListenState) => void>();
  private client: pg.Client | undefined;
  /** Channels LISTENed on `client`. */
  private readonly listened = new Set<string>();
  private chain: Promise<void> = Promise.resolve();
  private reconnectTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private lastConnectFailure: { error: unknown; atMs: number } | undefined;
  /** Clients given up on: whatever they still deliver is not trusted. */
  private readonly retired = new WeakSet<pg.Client>();

  constructor(
    private readonly url: string,
    private readonly options: PgListenerOptions = DEFAULT_PG_LISTENER_OPTIONS,
  ) {
    for (const [name, value] of Object.entries(options)) {
      if (!Number.isSafeInteger(value) || value < 1)
        throw new RangeError(`${name} must be a positive integer`);
    }
  }

  async listen(
    channel: string,
    onNotify: (payload: string) => void,
    onState?: (state: ListenState) => void,
  ): Promise<() => Promise<void>> {
    if (!NOTIFY_CHANNEL.test(channel)) throw new Error(`invalid NOTIFY channel ${channel}`);
    if (this.closed) throw new Error('listener closed');
    let set = this.channels.get(channel);
    if (!set) {
      set = new Set();
      this.channels.set(channel, set);
    }
    const subscribers = set;
    subscribers.add(onNotify);
    try {
      await this.serially(() => this.ensureListening(channel));
    } catch (error) {
      subscribers.delete(onNotify);
      throw error;
    }
    if (onState) {
      this.stateListeners.add(onState);
      // Lost meanwhile: the subscriber hears 'listening' after the reconnect instead.
      if (this.client && this.listened.has(channel)) onState('listening');
    }
    return async () => {
      subscribers.delete(onNotify);
      if (onState) this.stateListeners.delete(onState);
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeatTimer);
    const c = this.client;
    this.client = undefined;
    this.listened.clear();
    if (c) {
      this.retired.add(c);
      await endWithin(c, this.options.queryTimeoutMs);
    }
  }

  private serially<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async ensureListening(channel: string): Promise<void> {
    if (this.closed) throw new Error('listener closed');
    if (!this.client) {
      // Subscribers queued behind a connect that just failed share its failure instead of each waiting
      // out their own connect timeout in turn.
      const failed = this.lastConnectFailure;
      if (failed && performance.now() - failed.atMs < this.options.reconnectDelayMs) throw failed.error;
      return this.connect();
    }
    if (this.listened.has(channel)) return;
    await this.client.query(`LISTEN ${channel}`);
    this.listened.add(channel);
  }

  private async connect(): Promise<void> {
    const c = new pg.Client({
      connectionString: this.url,
      connectionTimeoutMillis: this.options.connectTimeoutMs,
      query_timeout: this.options.queryTimeoutMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      application_name: LISTENER_APPLICATION_NAME,
    });
    c.on('notification', (msg) => {
      // Delivered from LISTEN on, even before the client is adopted: never dropped in between.
      if (this.retired.has(c)) return;
      for (const fn of this.channels.get(msg.channel) ?? []) fn(msg.payload ?? '');
    });
    c.on('error', () => this.lost(c));
    c.on('end', () => this.lost(c));
    try {
      await c.connect();
      const channels = [...this.channels.keys()];
      for (const channel of channels) await c.query(`LISTEN ${channel}`);
      if (this.closed) throw new Error('listener closed');
      this.client = c;
      this.listened.clear();
      for (const channel of channels) this.listened.add(channel);
    } catch (error) {
      this.retired.add(c);
      this.lastConnectFailure = { error, atMs: performance.now() };
      void endWithin(c, this.options.queryTimeoutMs);
      throw error;
    }
    this.lastConnectFailure = undefined;
    this.startHeartbeat(c);
    for (const fn of this.stateListeners) fn('listening');
  }

  private startHeartbeat(c: pg.Client): void {
    clearInterval(this.heartbeatTimer);
    let inFlight = false;
    this.heartbeatTimer = setInterval(() => {
      if (inFlight || c !== this.client) return;
      inFlight = true;
      c.query('SELECT 1').then(
        () => {
          inFlight = false;
        },
        () => {
          inFlight = false;
          this.lost(c);
        },
      );
    }, this.options.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  private lost(c: pg.Client): void {
    // A replaced or never-adopted client's late events say nothing about the current one.
    if (c !== this.client) return;
    this.retired.add(c);
    this.client = undefined;
    this.listened.clear();
    clearInterval(this.heartbeatTimer);
    void endWithin(c, this.options.queryTimeoutMs);
    for (const fn of this.stateListeners) fn('lost');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.closed || this.channels.size === 0) return;
      this.serially(async () => {
        if (!this.client) await this.connect();
      }).catch(() => this.scheduleReconnect());
    }, this.options.reconnectDelayMs);
    this.reconnectTimer.unref();
  }
}

/** end() waits for the server's goodbye, which a dead socket never sends: bounded. */
async function endWithin(c: pg.Client, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    c.end().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
}
