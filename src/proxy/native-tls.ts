import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { verifyPasswordMessage } from './auth.js';
import { type BackendSession, reportParameter } from './connect.js';
import { admit, type ProxyContext, passwordOptions, refusal } from './connection.js';
import { MAX_BEING_REFUSED, type OverCap, tooManyConnections } from './connection-caps.js';
import type { InstanceRoute } from './directory.js';
import { ProxyError } from './errors.js';
import { checkAlpn, normalizeAddress, plaintextRequest } from './handshake.js';
import { NegotiateProtocolVersion, ProtocolViolation } from './protocol.js';
import { parseStartup, type Startup } from './startup.js';

/**
 * The optional native path (native/pier_tls.c, built at install when a C
 * compiler is there). C owns each client connection: accept, SSLRequest, the
 * TLS handshake, framing the startup and password messages, the splice after
 * authentication and the reset of a backend for the next client. Every
 * decision stays here, in the same functions the JavaScript path uses; C asks
 * through one event callback, a few times a connection. Without the module
 * the proxy runs on Node's TLS with the same behaviour. `PIER_NATIVE_TLS=0`
 * turns the native path off.
 */

declare const nativeContextBrand: unique symbol;
declare const nativeBrand: unique symbol;
export type NativeContext = { readonly [nativeContextBrand]: true };
type NativeFront = { readonly [nativeBrand]: 'front' };
type NativeListener = { readonly [nativeBrand]: 'listener' };
type NativeConnection = { readonly [nativeBrand]: 'connection' };
type NativeBackend = { readonly [nativeBrand]: 'backend' };

/** C's one callback: `type` says which event, `a`, `b`, `c` are its values (native/pier_tls.c). */
type EventHandler = (
  conn: NativeConnection,
  state: ConnectionState & Partial<BackendState>,
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
      resetMs: number;
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
  /** 1: spliced; 0: the client is gone; -1: the backend broke while waiting. Nothing is taken unless 1. */
  splice(
    conn: NativeConnection,
    backend: NativeBackend,
    toClient: Buffer,
    fromBackend: Buffer,
    reset: boolean,
  ): 1 | 0 | -1;
  adoptBackend(front: NativeFront, fd: number, state: BackendState): NativeBackend;
  closeBackend(backend: NativeBackend): void;
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
        typeof binding.authenticated === 'function'
          ? { binding: binding as NativeTlsBinding, why: 'loaded' }
          : { binding: undefined, why: 'out of date (rebuild it: npm rebuild pier)' };
    } catch (error) {
      loaded = { binding: undefined, why: `failed to load: ${(error as Error).message}` };
    }
  }
  return loaded;
}

// The events C sends (native/pier_tls.c).
const EV_HELLO = 1;
const EV_PLAIN = 2;
const EV_STARTUP = 3;
const EV_PASSWORD = 4;
const EV_TIMEOUT = 5;
const EV_BAD_PACKET = 6;
const EV_SPLICE_END = 8;
const EV_BACKEND_LOST = 9;

/** What JavaScript remembers of one native connection; C creates the object with the first event. */
interface ConnectionState {
  conn?: NativeConnection;
  client: string;
  local: string;
  servername?: string;
  startup?: Startup;
  instance?: string;
  overCap?: OverCap;
  /** Aborted when the connection ends before a splice: a password check waiting its turn gives up. */
  ended?: AbortController;
  /** Set once spliced: what to do when C reports the end. */
  onSpliceEnd?: (reusable: boolean, parameterStatus: Buffer | undefined) => void;
}

/** What JavaScript gives C with a backend session it adopts: the session, for EV_BACKEND_LOST. */
interface BackendState {
  session: BackendSession;
}

export interface NativeFrontDoor {
  /** Listens on a literal IP address; returns the port (useful with 0) and how to stop. */
  listen(address: string, port: number): { port: number; close(): void };
  activeClients(): number;
  /** Ends every connection now. */
  closeAll(): void;
}

/**
 * Starts the native front door for the proxy context `ctx`: the same
 * decisions as `handleClient`, taken when C asks.
 */
export function startNativeFrontDoor(
  binding: NativeTlsBinding,
  ctx: ProxyContext,
  contexts: { defaultContext: NativeContext; contextFor(route: InstanceRoute): Promise<NativeContext> },
  resetTimeoutMs: number,
): NativeFrontDoor {
  // Certificates per instance, once issued: most handshakes need no promise.
  const ready = new Map<string, NativeContext>();
  const certificateKey = (route: InstanceRoute) => `${route.dnsName},${route.address ?? ''}`;

  function refuse(state: ConnectionState, error: unknown): void {
    if (state.ended?.signal.aborted) return; // already refused, or the client left
    state.ended?.abort();
    const { packet, closedByPeer } = refusal(ctx, error, {
      client: state.client,
      user: state.startup?.user,
      instance: state.instance,
    });
    if (state.conn) binding.end(state.conn, closedByPeer ? undefined : packet);
  }

  function hello(state: ConnectionState, conn: NativeConnection, servername: string): void {
    state.servername = servername || undefined;
    // The SNI name picks the certificate; without one, the address the client dialled.
    const route =
      (servername ? ctx.directory.byDnsName(servername) : undefined) ??
      (state.local ? ctx.directory.byAddress(normalizeAddress(state.local)) : undefined);
    if (!route) {
      binding.useContext(conn, undefined);
      return;
    }
    const key = certificateKey(route);
    const context = ready.get(key);
    if (context) {
      binding.useContext(conn, context);
      return;
    }
    contexts.contextFor(route).then(
      (issued) => {
        if (ready.size > 10_000) ready.clear();
        ready.set(key, issued);
        binding.useContext(conn, issued);
      },
      (error: unknown) => refuse(state, error),
    );
  }

  function startup(
    state: ConnectionState,
    conn: NativeConnection,
    packet: Buffer,
    alpn: string,
    direct: boolean,
  ) {
    checkAlpn(direct, alpn || undefined);
    const parsed = parseStartup(packet);
    if (parsed.kind === 'cancel') {
      binding.end(conn);
      ctx.log({ event: 'cancel', client: state.client });
      void ctx.cancels.forward(parsed);
      return;
    }
    state.startup = parsed;
    if (state.overCap) throw tooManyConnections(state.overCap, state.client, ctx.limits);
    ctx.throttle.refuseIfThrottled(state.client);
    const prefix = parsed.negotiate
      ? NegotiateProtocolVersion(parsed.negotiate.minor, parsed.negotiate.unsupportedOptions)
      : undefined;
    binding.askPassword(conn, prefix);
  }

  async function password(state: ConnectionState, conn: NativeConnection, type: number, body: Buffer) {
    const startup = state.startup as Startup;
    let backend: BackendSession | undefined;
    try {
      const client = { servername: state.servername, localAddress: state.local, clientAddress: state.client };
      state.ended = new AbortController();
      const credential = await verifyPasswordMessage(type, body, startup, {
        ...passwordOptions(ctx, client),
        signal: state.ended.signal,
      });
      if (state.ended.signal.aborted) return; // refused meanwhile (e.g. out of time): nothing to connect
      binding.authenticated(conn);
      // A warm session can end between the pool and the splice (C then refuses it): one more try, fresh.
      for (let attempt = 1; ; attempt++) {
        const admitted = await admit(ctx, client, startup, credential, (name) => {
          state.instance = name;
        });
        backend = admitted.backend;
        const session = backend;
        const fromBackend = session.native ? EMPTY : await adopt(session);
        state.onSpliceEnd = (reusable, parameterStatus) => {
          ctx.cancels.unregister(admitted.cancelKey);
          if (reusable) {
            if (parameterStatus) applyParameterStatus(session, parameterStatus);
            ctx.pool.keep(session);
          } else {
            session.socket.destroy();
          }
          ctx.log({ event: 'closed', client: state.client, user: startup.user, instance: state.instance });
        };
        const reset = ctx.pool.hasRoom(session.poolKey);
        const native = session.native as NativeBackend;
        const spliced = binding.splice(conn, native, admitted.greeting, fromBackend, reset);
        if (spliced === 1) break;
        state.onSpliceEnd = undefined;
        ctx.cancels.unregister(admitted.cancelKey);
        backend = undefined;
        if (spliced === 0) {
          ctx.pool.keep(session); // the client left while we were deciding; the session is still good
          return;
        }
        session.socket.destroy();
        if (attempt === 2) {
          throw new ProxyError(
            'BACKEND_UNREACHABLE',
            `Database instance '${state.instance}' ended the session.`,
            {
              hint: 'Connect again.',
            },
          );
        }
      }
      ctx.log({ event: 'connected', client: state.client, user: startup.user, instance: state.instance });
    } catch (error) {
      backend?.socket.destroy();
      refuse(state, error);
    }
  }

  /**
   * Hands a backend session to C for the rest of its life: Node stops reading
   * it for good, and closing Node's socket closes C's copy too. Returns what
   * Node had already read from it (normally nothing), for the client.
   */
  async function adopt(session: BackendSession): Promise<Buffer> {
    const { socket } = session;
    const fd = descriptorOf(socket);
    if (fd === undefined) throw new Error('the backend socket has no descriptor');
    stopReading(socket);
    const fromBackend = socket.readableLength > 0 ? Buffer.concat([...buffered(socket)]) : EMPTY;
    if (socket.writableLength > 0) await flushed(socket);
    const native = binding.adoptBackend(front, fd, { session });
    session.native = native;
    socket.once('close', () => binding.closeBackend(native));
    return fromBackend;
  }

  const onEvent: EventHandler = (conn, state, type, a, b, c) => {
    if (type === EV_BACKEND_LOST) {
      if (state.session) ctx.pool.forget(state.session);
      return;
    }
    try {
      if (state.conn === undefined) {
        state.conn = conn;
        const [client, local, overCap] = binding.addresses(conn);
        state.client = client;
        state.local = local;
        state.overCap = overCap || undefined;
      }
      switch (type) {
        case EV_HELLO:
          hello(state, conn, a as string);
          break;
        case EV_PLAIN: {
          const cancel = plaintextRequest(a as Buffer);
          binding.end(conn);
          ctx.log({ event: 'cancel', client: state.client });
          void ctx.cancels.forward(cancel);
          break;
        }
        case EV_STARTUP:
          startup(state, conn, a as Buffer, b as string, c as boolean);
          break;
        case EV_PASSWORD:
          void password(state, conn, a as number, b as Buffer);
          break;
        case EV_TIMEOUT:
          refuse(state, new ProxyError('PRE_AUTH_TIMEOUT', 'The connection did not authenticate in time.'));
          break;
        case EV_BAD_PACKET:
          refuse(
            state,
            a === 'DATA_BEFORE_TLS'
              ? new ProxyError('PROTOCOL_VIOLATION', b as string)
              : new ProtocolViolation(a as 'PROTOCOL_VIOLATION' | 'PACKET_TOO_LARGE', b as string),
          );
          break;
        case EV_SPLICE_END:
          state.onSpliceEnd?.(a as boolean, b as Buffer | undefined);
          break;
        default:
          state.ended?.abort(); // EV_CLOSED: the client left before authenticating; nothing to tell it
          break;
      }
    } catch (error) {
      refuse(state, error);
    }
  };

  const front = binding.front(onEvent, contexts.defaultContext, {
    maxStartup: ctx.limits.maxStartupPacketBytes,
    maxPassword: ctx.limits.maxPasswordBytes,
    preAuthMs: ctx.limits.preAuthTimeoutMs,
    resetMs: resetTimeoutMs,
    maxConnections: ctx.limits.maxConnections,
    maxPerAddress: ctx.limits.maxConnectionsPerAddress,
    maxRefusing: MAX_BEING_REFUSED,
  });
  return {
    listen(address, port) {
      const { listener, port: bound } = binding.listen(front, address, port);
      return { port: bound, close: () => binding.closeListener(listener) };
    },
    activeClients: () => binding.stats(front),
    closeAll: () => binding.closeAll(front),
  };
}

const EMPTY = Buffer.alloc(0);

/** ParameterStatus messages the reset produced: the next client is told the current values. */
function applyParameterStatus(session: BackendSession, messages: Buffer): void {
  for (let at = 0; at + 5 <= messages.length; ) {
    const length = messages.readInt32BE(at + 1);
    const [name, value] = messages.toString('utf8', at + 5, at + 1 + length).split('\0');
    reportParameter(session, name, value);
    at += 1 + length;
  }
}

/** The parts of Node's socket internals the splice needs; checked before use. */
interface StreamHandle {
  fd?: number;
  reading?: boolean;
  readStop?: () => number;
  readStart?: () => number;
}

function handleOf(socket: Socket): StreamHandle | undefined {
  return (socket as unknown as { _handle?: StreamHandle })._handle ?? undefined;
}

/** The socket's descriptor, if Node's handle exposes what a splice needs; undefined otherwise. */
function descriptorOf(socket: Socket): number | undefined {
  const handle = handleOf(socket);
  const usable = typeof handle?.fd === 'number' && handle.fd >= 0 && typeof handle.readStop === 'function';
  return usable ? handle.fd : undefined;
}

/** Stops Node reading the socket at the kernel, not just at the stream (pause alone keeps reading). */
function stopReading(socket: Socket): void {
  const handle = handleOf(socket) as StreamHandle;
  socket.pause();
  handle.reading = false;
  handle.readStop?.();
}

/** What Node had already read into the (paused) stream. */
function* buffered(socket: Socket): Generator<Buffer> {
  for (let chunk = socket.read() as Buffer | null; chunk; chunk = socket.read() as Buffer | null) yield chunk;
}

/** Resolves once everything written to the socket so far has reached the kernel. */
function flushed(socket: Socket): Promise<void> {
  if (socket.writableLength === 0) return Promise.resolve();
  return new Promise((resolve) => socket.write(Buffer.alloc(0), () => resolve()));
}
