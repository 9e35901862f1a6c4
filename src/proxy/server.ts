import { lookup } from 'node:dns/promises';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import { CancelMap } from './cancel.js';
import { handleClient, type ProxyContext, type ProxyEvent, type ProxyLimits } from './connection.js';
import { ConnectionCaps, DEFAULT_CONNECTION_CAPS } from './connection-caps.js';
import type { PasswordCheck, ProxyDirectory } from './directory.js';
import { LoginThrottle, type LoginThrottleOptions } from './login-throttle.js';
import { type NativeFrontDoor, startNativeFrontDoor } from './native-front-door.js';
import { nativeTls } from './native-tls.js';
import { NodeClient } from './node-client.js';
import { DEFAULT_WARM_POOL, WarmPool, type WarmPoolOptions } from './pool.js';
import { normalizeAddress } from './route.js';
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
  /** Size and time limits, and the connection caps (`maxConnections`, `maxConnectionsPerAddress`). */
  limits?: Partial<ProxyLimits>;
  /** Warm backend sessions; `false` turns reuse off. */
  warmPool?: Partial<WarmPoolOptions> | false;
  /** Failed logins per address before it is refused for a while (docs/proxy.md, Limits). */
  loginThrottle?: Partial<LoginThrottleOptions>;
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
  ...DEFAULT_CONNECTION_CAPS,
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
    throttle: new LoginThrottle(options.loginThrottle),
    limits: {
      ...DEFAULT_LIMITS,
      ...options.limits,
      ...(options.preAuthTimeoutMs ? { preAuthTimeoutMs: options.preAuthTimeoutMs } : {}),
    },
    log: options.logger ?? (() => {}),
  };
  const front = tls.native
    ? startNativeFrontDoor(tls.native.binding, ctx, tls.native, pool.options.resetTimeoutMs)
    : undefined;
  const listeners = front ? nativeListeners(front) : nodeListeners(ctx);
  const port = await listeners.listen(host, options.port ?? 5432);
  const wildcard = host === '0.0.0.0' || host === '::';
  const perInstance = new Map<string, Listening>();

  return {
    port,
    address: host,
    caCertPath: tls.caCertPath,
    tlsPath: tls.native ? { kind: 'native', why: native.why } : { kind: 'javascript', why: native.why },
    async setInstanceAddresses(addresses) {
      if (wildcard) return; // the wildcard listener already receives them; localAddress still routes
      const wanted = new Set(addresses.filter((address) => address !== host));
      for (const [address, listening] of perInstance) {
        if (!wanted.has(address)) {
          perInstance.delete(address);
          listening.close();
        }
      }
      for (const address of wanted) {
        if (perInstance.has(address)) continue;
        perInstance.set(address, NOT_YET_LISTENING); // a concurrent call sees the address taken
        try {
          perInstance.set(address, await listeners.listenMore(address, port));
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
        activeClients: listeners.activeClients(),
        idleBackends: pool.idleCount,
        cancelKeys: ctx.cancels.size,
        throttledAddresses: ctx.throttle.size,
      };
    },
    async close() {
      const extra = [...perInstance.values()];
      perInstance.clear();
      await Promise.all([listeners.close(), ...extra.map((listening) => listening.close())]);
      pool.closeIdle();
    },
  };
}

/** One listening address. */
interface Listening {
  close(): void | Promise<void>;
}

const NOT_YET_LISTENING: Listening = { close() {} };

/** Where connections come in: Node's servers (JavaScript path) or the native front door. */
interface Listeners {
  /** The main listener; returns its port. */
  listen(host: string, port: number): Promise<number>;
  /** Another address on the same port (per-instance addresses). */
  listenMore(address: string, port: number): Promise<Listening>;
  activeClients(): number;
  /** Closes the main listener and every client connection. */
  close(): Promise<void>;
}

function nodeListeners(ctx: ProxyContext): Listeners {
  const clients = new Set<Socket>();
  const caps = new ConnectionCaps(ctx.limits);
  const limits = { ...ctx.limits, resetTimeoutMs: ctx.pool.options.resetTimeoutMs };
  const onConnection = (socket: Socket) => {
    const counted = caps.admit(normalizeAddress(socket.remoteAddress ?? ''));
    if (counted.over === 'drop') {
      socket.destroy();
      return;
    }
    clients.add(socket);
    socket.once('close', () => {
      clients.delete(socket);
      counted.release();
    });
    socket.setNoDelay(true);
    void handleClient(new NodeClient(socket, ctx.tls, limits, counted.over), ctx);
  };
  const main = createServer({ pauseOnConnect: false }, onConnection);
  const closeServer = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));
  return {
    async listen(host, port) {
      const bound = await listen(main, host, port);
      // After listening, an accept error (e.g. out of file descriptors) must not crash the process.
      main.on('error', (error) =>
        ctx.log({ event: 'refused', kind: 'INTERNAL', message: error.message, client: '' }),
      );
      return bound;
    },
    async listenMore(address, port) {
      const server = createServer(onConnection);
      await listen(server, address, port);
      return { close: () => closeServer(server) };
    },
    activeClients: () => clients.size,
    async close() {
      for (const socket of clients) socket.destroy();
      await closeServer(main);
    },
  };
}

function nativeListeners(front: NativeFrontDoor): Listeners {
  let main: { close(): void } | undefined;
  const listenOn = async (host: string, port: number) =>
    front.listen(isIP(host) ? host : (await lookup(host)).address, port);
  return {
    async listen(host, port) {
      const listening = await listenOn(host, port);
      main = listening;
      return listening.port;
    },
    listenMore: (address, port) => listenOn(address, port),
    activeClients: () => front.activeClients(),
    async close() {
      main?.close();
      front.closeAll();
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
