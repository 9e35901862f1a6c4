import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The optional native path (native/pier_tls.c, built at install when a C
 * compiler is there). C owns each client connection: accept, SSLRequest, the
 * TLS handshake, framing the startup and password messages, and the splice
 * after authentication. Every decision stays in JavaScript, in the same
 * `handleClient` the other path runs; C asks through one event callback, a
 * few times a connection. Without the module
 * the proxy runs on Node's TLS with the same behaviour. `PIER_NATIVE_TLS=0`
 * turns the native path off. This file is the binding's shape and its
 * loader; native-client.ts speaks to it.
 */

declare const nativeContextBrand: unique symbol;
declare const nativeBrand: unique symbol;
export type NativeContext = { readonly [nativeContextBrand]: true };
export type NativeFront = { readonly [nativeBrand]: 'front' };
type NativeListener = { readonly [nativeBrand]: 'listener' };
export type NativeConnection = { readonly [nativeBrand]: 'connection' };
export type NativeBackend = { readonly [nativeBrand]: 'backend' };

/** JavaScript's object for one native connection or backend: C creates it (empty) with the first event. */
export type NativeState = Record<string, unknown>;

/** C's one callback: `type` says which event, `a`, `b`, `c` are its values (native/pier_tls.c). */
export type EventHandler = (
  conn: NativeConnection,
  state: NativeState,
  type: number,
  a: unknown,
  b: unknown,
  c: unknown,
) => void;

export interface NativeTlsBinding {
  context(cert: Buffer, key: Buffer, ciphers: string, ciphersuites: string, groups: string): NativeContext;
  front(
    onEvent: EventHandler,
    defaultContext: NativeContext,
    limits: {
      maxStartup: number;
      maxPassword: number;
      preAuthMs: number;
      maxConnections: number;
      maxPerAddress: number;
      maxRefusing: number;
    },
  ): NativeFront;
  listen(front: NativeFront, address: string, port: number): { listener: NativeListener; port: number };
  closeListener(listener: NativeListener): void;
  useContext(conn: NativeConnection, context: NativeContext | undefined): boolean;
  askPassword(conn: NativeConnection, prefix?: Buffer): boolean;
  /** The password held: the pre-authentication clock stops. */
  authenticated(conn: NativeConnection): void;
  end(conn: NativeConnection, lastWords?: Buffer): void;
  /**
   * 1: spliced; 0: the client is gone; -1: the backend broke while waiting. Nothing is taken unless 1.
   * `reset`: a client that leaves cleanly leaves the backend held for JavaScript's reset.
   */
  splice(
    conn: NativeConnection,
    backend: NativeBackend,
    toClient: Buffer,
    fromBackend: Buffer,
    reset: boolean,
  ): 1 | 0 | -1;
  adoptBackend(front: NativeFront, fd: number, state: NativeState): NativeBackend;
  closeBackend(backend: NativeBackend): void;
  /** Writes to a held backend (the reset); false when it cannot be written. */
  backendWrite(backend: NativeBackend, data: Buffer): boolean;
  /** The reset proved a held backend clean: C watches it while it waits for the next client. */
  backendIdle(backend: NativeBackend): void;
  /** [remote, local, the cap the connection went over ('' if none)]. */
  addresses(conn: NativeConnection): [string, string, '' | 'total' | 'address'];
  stats(front: NativeFront): number;
  closeAll(front: NativeFront): void;
}

const MODULE_PATH = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'native',
  'build',
  'pier_tls.node',
);

let loaded: { binding: NativeTlsBinding | undefined; why: string } | undefined;

/** The native binding, or undefined with the reason (not built, turned off, failed to load). */
export function nativeTls(): { binding: NativeTlsBinding | undefined; why: string } {
  if (loaded) return loaded;
  if (process.env.PIER_NATIVE_TLS === '0')
    loaded = { binding: undefined, why: 'turned off (PIER_NATIVE_TLS=0)' };
  else if (!existsSync(MODULE_PATH))
    loaded = { binding: undefined, why: 'not built (needs a C compiler at install: npm rebuild pier)' };
  else {
    try {
      const binding = createRequire(import.meta.url)(MODULE_PATH) as Partial<NativeTlsBinding>;
      loaded =
        typeof binding.backendIdle === 'function'
          ? { binding: binding as NativeTlsBinding, why: 'loaded' }
          : { binding: undefined, why: 'out of date (rebuild it: npm rebuild pier)' };
    } catch (error) {
      loaded = { binding: undefined, why: `failed to load: ${(error as Error).message}` };
    }
  }
  return loaded;
}

/** The events C sends (native/pier_tls.c), and what `a`, `b`, `c` hold with each. */
export const NativeEvent = {
  /** a: the SNI name ('' if none). The handshake waits for `useContext`. */
  HELLO: 1,
  /** a: the first plaintext packet that is neither SSLRequest nor GSSENCRequest. */
  PLAIN: 2,
  /** a: the startup packet inside TLS, b: the ALPN ('' if none), c: whether TLS was direct. */
  STARTUP: 3,
  /** a: the message type, b: its body. */
  PASSWORD: 4,
  /** The pre-authentication time is up. */
  TIMEOUT: 5,
  /** a: 'PROTOCOL_VIOLATION' | 'PACKET_TOO_LARGE' | 'DATA_BEFORE_TLS', b: the message. */
  BAD_PACKET: 6,
  /** Before a splice, the client went away. a: the reason. */
  CLOSED: 7,
  /** a: the client left cleanly; the backend is held (its bytes come as BACKEND_DATA) for the reset. */
  SPLICE_END: 8,
  /** (On a backend) it spoke or closed while waiting for a client, or closed while held. */
  BACKEND_LOST: 9,
  /** (On a held backend) a: what it sent. */
  BACKEND_DATA: 10,
} as const;
