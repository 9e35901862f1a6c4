import { createServer, type Server, type Socket } from 'node:net';
import { AuthFailureLimiter } from './auth.js';
import { CancelMap } from './cancel.js';
import { handleClient, type ProxyContext, type ProxyEvent, type ProxyLimits } from './connection.js';
import type { PasswordCheck, ProxyDirectory } from './directory.js';
import { nativeTls } from './native-tls.js';
import { DEFAULT_WARM_POOL, WarmPool, type WarmPoolOptions } from './pool.js';
import { loadTlsMaterial, type TlsSource } from './tls.js';

export interface ProxyOptions {
  /** Default 127.0.0.1. With a wildcard host, per-instance addresses need no listeners of their own. */
  host?: string;
  /** Default 5432; 0 picks a free port. */
  port?: number;
  /** `{ dir }`: Pier's own CA and certificates in `dir` (made on first start); `{ cert, key }`: the user's PEM files. */
  tls: TlsSource;
  directory: ProxyDirectory;
  passwords: PasswordCheck;
  /** Handshake + startup + authentication must finish within this; default 10 s. */
  preAuthTimeoutMs?: number;
  limits?: Partial<ProxyLimits>;
  /** Warm backend sessions; `false` turns reuse off. */
  warmPool?: Partial<WarmPoolOptions> | false;
  /** Backoff after repeated failed logins from one address. */
  authFailures?: ConstructorParameters<typeof AuthFailureLimiter>[0];
  logger?: (event: ProxyEvent) => void;
  /** Use the native TLS path when it is built (default true); false keeps Node's TLS for every connection. */
  nativeTls?: boolean;
}

export interface PierProxy {
  port: number;
  address: string;
  /** The CA clients pass as `sslrootcert`; undefined with user-supplied certificates. */
  caCertPath: string | undefined;
  /** Which TLS implementation serves connections, and why when it is not the native one. */
  tlsPath: { kind: 'native' | 'javascript'; why: string };
  /** Listens on exactly these per-instance addresses (same port) from now on; others are closed. */
  setInstanceAddresses(addresses: readonly string[]): Promise<void>;
  /** Closes idle warm backend sessions, e.g. of an instance about to stop or a database about to be dropped. */
  closeIdleBackends(filter?: (socketDir: string) => boolean): number;
  stats(): { activeClients: number; idleBackends: number; cancelKeys: number; throttledAddresses: number };
  close(): Promise<void>;
}

export const DEFAULT_LIMITS: ProxyLimits = {
  preAuthTimeoutMs: 10_000,
  maxStartupPacketBytes: 10_000,
  maxPasswordBytes: 16_384,
  backendConnectTimeoutMs: 10_000,
};

/**
 * Starts the Postgres TLS proxy.
 *
 * @example
 * const proxy = await startProxy({
 *   port: 5432, tls: { dir: join(pierHome, 'tls') }, directory, passwords: credentialPasswordCheck({ publicKeys }),
 * });
 * await proxy.setInstanceAddresses(['127.1.0.1', '127.1.0.2']);
 */
export async function startProxy(options: ProxyOptions): Promise<PierProxy> {
  const host = options.host ?? '127.0.0.1';
  const native = options.nativeTls === false ? { binding: undefined, why: 'turned off' } : nativeTls();
  const tls = await loadTlsMaterial(options.tls, { native: native.binding });
  const pool = new WarmPool(
    options.warmPool === false
      ? { ...DEFAULT_WARM_POOL, maxIdlePerKey: 0 }
      : { ...DEFAULT_WARM_POOL, ...options.warmPool },
  );
  const ctx: ProxyContext = {
    tls,
    directory: options.directory,
    passwords: options.passwords,
    cancels: new CancelMap(),
    pool,
    failures: new AuthFailureLimiter(options.authFailures),
    limits: {
      ...DEFAULT_LIMITS,
      ...options.limits,
      ...(options.preAuthTimeoutMs ? { preAuthTimeoutMs: options.preAuthTimeoutMs } : {}),
    },
    log: options.logger ?? (() => {}),
  };
  const clients = new Set<Socket>();
  const onConnection = (socket: Socket) => {
    clients.add(socket);
    socket.once('close', () => clients.delete(socket));
    socket.setNoDelay(true);
    void handleClient(socket, ctx);
  };

  const main = createServer({ pauseOnConnect: false }, onConnection);
  const port = await listen(main, host, options.port ?? 5432);
  // After listening, an accept error (e.g. out of file descriptors) must not crash the process.
  main.on('error', (error) =>
    ctx.log({ event: 'refused', kind: 'INTERNAL', message: error.message, client: '' }),
  );
  const wildcard = host === '0.0.0.0' || host === '::';
  const perInstance = new Map<string, Server>();

  return {
    port,
    address: host,
    caCertPath: tls.caCertPath,
    tlsPath: tls.native ? { kind: 'native', why: native.why } : { kind: 'javascript', why: native.why },
    async setInstanceAddresses(addresses) {
      if (wildcard) return; // the wildcard listener already receives them; localAddress still routes
      const wanted = new Set(addresses.filter((address) => address !== host));
      for (const [address, server] of perInstance) {
        if (!wanted.has(address)) {
          perInstance.delete(address);
          server.close();
        }
      }
      for (const address of wanted) {
        if (perInstance.has(address)) continue;
        const server = createServer(onConnection);
        perInstance.set(address, server);
        try {
          await listen(server, address, port);
        } catch (error) {
          perInstance.delete(address);
          throw error;
        }
      }
    },
    closeIdleBackends(filter) {
      return pool.closeIdle((session) => !filter || filter(session.socketPath.replace(/\/[^/]*$/, '')));
    },
    stats() {
      return {
        activeClients: clients.size,
        idleBackends: pool.idleCount,
        cancelKeys: ctx.cancels.size,
        throttledAddresses: ctx.failures.size,
      };
    },
    async close() {
      const servers = [main, ...perInstance.values()];
      perInstance.clear();
      await Promise.all(
        servers
          .map((server) => new Promise<void>((resolve) => server.close(() => resolve())))
          .concat(
            [...clients].map(async (socket) => {
              socket.destroy();
            }),
          ),
      );
      pool.closeIdle();
    },
  };
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}
