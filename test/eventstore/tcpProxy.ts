import net from 'node:net';

/**
 * A TCP forwarder between a client and the Postgres server, so a test can make the client's connections
 * die the way they do when the app is killed (kill -9) or the network drops: the client sees its sockets
 * close, while the server keeps the other ends open and goes on executing whatever it was running,
 * committing it if nothing fails — exactly the orphaned statement a restarted app's predecessor leaves.
 */
export interface TcpProxy {
  /** The target URL with host and port replaced by the proxy's. */
  url: string;
  /** Destroys every client-side socket; server-side sockets stay open and their output is dropped. */
  cutClients(): void;
  /**
   * Stops forwarding in both directions without closing anything (a half-open network: a partition or a
   * NAT that forgot the flow); `false` resumes for connections made afterwards.
   */
  stall(stalled: boolean): void;
  /** Closes everything, server sides included (the server then ends the orphaned sessions). */
  close(): Promise<void>;
}

export async function startTcpProxy(targetUrl: string): Promise<TcpProxy> {
  const target = new URL(targetUrl);
  const targetPort = Number(target.port || 5432);
  const clientSides = new Set<net.Socket>();
  const serverSides = new Set<net.Socket>();
  let stalled = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, target.hostname);
    // A connection that saw a stall stays dead, as a flow a NAT dropped does.
    let dead = false;
    clientSides.add(client);
    serverSides.add(upstream);
    client.on('data', (chunk) => {
      dead ||= stalled;
      if (!dead) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      dead ||= stalled;
      if (!dead && !client.destroyed) client.write(chunk);
    });
    // A cut client must not end the upstream session: that is the point of the proxy.
    client.on('error', () => undefined);
    client.on('close', () => clientSides.delete(client));
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => {
      serverSides.delete(upstream);
      client.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as net.AddressInfo;
  const url = new URL(targetUrl);
  url.hostname = '127.0.0.1';
  url.port = String(address.port);
  return {
    url: url.toString(),
    cutClients() {
      for (const socket of clientSides) socket.destroy();
    },
    stall(value) {
      stalled = value;
    },
    async close() {
      for (const socket of [...clientSides, ...serverSides]) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
