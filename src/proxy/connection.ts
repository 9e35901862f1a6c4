import { type Credential, checkAudience, type PasswordOptions, verifyPasswordMessage } from './auth.js';
import { type BackendSession, parameterStatusMessages } from './backend-session.js';
import type { CancelKey, CancelMap } from './cancel.js';
import type { ClientConnection } from './client-connection.js';
import { acquireBackend } from './connect.js';
import { type ConnectionCapOptions, tooManyConnections } from './connection-caps.js';
import type { InstanceRoute, PasswordCheck, ProxyDirectory } from './directory.js';
import { errorResponseFor, ProxyError, type ProxyErrorKind } from './errors.js';
import type { LoginThrottle } from './login-throttle.js';
import type { WarmPool } from './pool.js';
import {
  AuthenticationOk,
  BackendKeyData,
  NegotiateProtocolVersion,
  ProtocolViolation,
  ReadyForQuery,
} from './protocol.js';
import { certificateRoute, routeConnection } from './route.js';
import type { Startup } from './startup.js';
import type { TlsMaterial } from './tls.js';

export interface ProxyLimits extends ConnectionCapOptions {
  /** Handshake, startup and authentication (the password checked) together must finish within this. */
  preAuthTimeoutMs: number;
  maxStartupPacketBytes: number;
  maxPasswordBytes: number;
  backendConnectTimeoutMs: number;
}

export interface ProxyEvent {
  event: 'connected' | 'refused' | 'cancel' | 'closed';
  kind?: ProxyErrorKind;
  message?: string;
  client: string;
  instance?: string;
  user?: string;
}

export interface ProxyContext {
  tls: TlsMaterial;
  directory: ProxyDirectory;
  passwords: PasswordCheck;
  cancels: CancelMap;
  pool: WarmPool;
  throttle: LoginThrottle;
  limits: ProxyLimits;
  log(event: ProxyEvent): void;
}

/**
 * One client connection, top to bottom in its phases: handshake (TLS) →
 * startup → auth → route → connect → passthrough. The same for both TLS
 * paths: `conn` moves the bytes (node-client.ts, native-client.ts), this
 * function takes every decision. Never throws: every failure becomes an
 * ErrorResponse to the client (when it can still be told) and a log event.
 */
export async function handleClient(conn: ClientConnection, ctx: ProxyContext): Promise<void> {
  const who: { client: string; user?: string; instance?: string } = { client: conn.clientAddress };
  const ended = new AbortController(); // refused, or the client left: a waiting phase gives up
  const fail = (error: unknown) => {
    if (ended.signal.aborted) return; // already refused, or gone: a phase giving up says nothing new
    ended.abort();
    const { packet, closedByPeer } = refusal(ctx, error, who);
    conn.refuse(closedByPeer ? undefined : packet);
  };
  conn.watch({
    timedOut: () => fail(new ProxyError('PRE_AUTH_TIMEOUT', 'The connection did not authenticate in time.')),
    closed: () => ended.abort(),
    failed: fail,
  });
  let backend: BackendSession | undefined;
  try {
    // Handshake.
    const hello = await conn.handshake((servername) =>
      certificateRoute(ctx.directory, servername, conn.localAddress),
    );
    if (hello.kind === 'cancel') return forwardCancel(conn, ctx, hello);

    // Startup.
    const startup = await conn.readStartup();
    if (startup.kind === 'cancel') return forwardCancel(conn, ctx, startup);
    who.user = startup.user;
    if (conn.overCap) throw tooManyConnections(conn.overCap, conn.clientAddress, ctx.limits);

    // Auth.
    ctx.throttle.refuseIfThrottled(conn.clientAddress);
    const negotiate = startup.negotiate
      ? NegotiateProtocolVersion(startup.negotiate.minor, startup.negotiate.unsupportedOptions)
      : undefined;
    const password = await conn.askPassword(negotiate);
    const client: ClientFacts = {
      servername: hello.servername,
      localAddress: conn.localAddress,
      clientAddress: conn.clientAddress,
    };
    const credential = await verifyPasswordMessage(password.type, password.body, startup, {
      ...passwordOptions(ctx, client),
      signal: ended.signal,
    });
    if (ended.signal.aborted) return; // refused meanwhile (e.g. out of time): nothing to connect
    conn.authenticated();

    // Route, connect, passthrough. A warm session can end between the pool and the splice: one more try.
    for (let attempt = 1; ; attempt++) {
      const admitted = await admit(
        ctx,
        client,
        startup,
        credential,
        (name) => {
          who.instance = name;
        },
        ended.signal,
      );
      backend = admitted.backend;
      const splice = await conn.splice(backend, admitted.greeting, ctx.pool.hasRoom(backend.poolKey));
      if (splice.kind === 'spliced') {
        ctx.log({ event: 'connected', ...who });
        ctx.directory.waking?.sessionStarted(admitted.route);
        const { reusable } = await splice.ended.finally(() =>
          ctx.directory.waking?.sessionEnded(admitted.route),
        );
        ctx.cancels.unregister(admitted.cancelKey);
        const session = backend;
        if (reusable) await ctx.pool.release(session, () => conn.reset(session));
        else session.socket.destroy();
        ctx.log({ event: 'closed', ...who });
        return;
      }
      ctx.cancels.unregister(admitted.cancelKey);
      const session = backend;
      backend = undefined;
      if (splice.kind === 'client-gone') return ctx.pool.keep(session); // the session is still good
      session.socket.destroy();
      if (attempt === 2) {
        throw new ProxyError(
          'BACKEND_UNREACHABLE',
          `Database instance '${who.instance}' ended the session.`,
          {
            hint: 'Connect again.',
          },
        );
      }
    }
  } catch (error) {
    backend?.socket.destroy();
    fail(error);
  }
}

/** A CancelRequest, in the clear or inside TLS: the connection has said all it will; the key is forwarded. */
function forwardCancel(conn: ClientConnection, ctx: ProxyContext, key: CancelKey): Promise<void> {
  conn.close();
  ctx.log({ event: 'cancel', client: conn.clientAddress });
  return ctx.cancels.forward(key);
}

/** What the connection knows that authentication and routing need. */
interface ClientFacts {
  servername: string | undefined;
  localAddress: string | undefined;
  clientAddress: string;
}

function passwordOptions(ctx: ProxyContext, client: ClientFacts): PasswordOptions {
  return {
    passwords: ctx.passwords,
    throttle: ctx.throttle,
    clientAddress: client.clientAddress,
    nativeLogin: ctx.directory.verifyNativePassword
      ? { directory: ctx.directory, servername: client.servername, localAddress: client.localAddress }
      : undefined,
  };
}

/**
 * A failed connection: the ErrorResponse to send (unless the client already
 * left) and the 'refused' log event.
 */
function refusal(
  ctx: ProxyContext,
  error: unknown,
  who: { client: string; user?: string; instance?: string },
): { packet: Buffer; closedByPeer: boolean } {
  const { kind, packet } = errorResponseFor(error);
  const closedByPeer = error instanceof ProtocolViolation && error.kind === 'CLOSED';
  if (!closedByPeer) {
    const detail = error instanceof ProxyError && error.detail ? ` (${error.detail})` : '';
    ctx.log({ event: 'refused', kind, message: `${(error as Error).message}${detail}`, ...who });
  }
  return { packet, closedByPeer };
}

/** What a client is let in with: its backend, its cancel key, and the greeting that ends authentication. */
interface Admission {
  route: InstanceRoute;
  backend: BackendSession;
  cancelKey: CancelKey;
  /** AuthenticationOk, ParameterStatus…, BackendKeyData, notices, ReadyForQuery. */
  greeting: Buffer;
}

/**
 * Route and connect: to the instance (native login already has routed),
 * check the credential opens it, get a backend session, and build the
 * greeting. Throws a ProxyError the client is shown.
 */
async function admit(
  ctx: ProxyContext,
  client: ClientFacts,
  startup: Startup,
  credential: Credential,
  onRouted: (instance: string) => void,
  signal: AbortSignal,
): Promise<Admission> {
  let route =
    credential.nativeRoute ??
    routeConnection(ctx.directory, { ...client, startup, audience: credential.audience });
  onRouted(route.name);
  if (!credential.nativeRoute) checkAudience(route, credential.audience, startup.user);
  // Scale to zero: a suspended instance is started while the client waits.
  if (route.state !== 'AVAILABLE' && ctx.directory.waking)
    route = await ctx.directory.waking.wake(route, signal);
  const backend = await acquireBackend(route, startup, {
    directory: ctx.directory,
    timeoutMs: ctx.limits.backendConnectTimeoutMs,
    pool: ctx.pool,
  });
  const cancelKey = ctx.cancels.register({
    socketPath: backend.socketPath,
    processId: backend.processId,
    secretKey: backend.secretKey,
  });
  const greeting = Buffer.concat([
    AuthenticationOk(),
    parameterStatusMessages(backend),
    BackendKeyData(cancelKey.processId, cancelKey.secretKey),
    ...backend.notices,
    ReadyForQuery('I'),
  ]);
  return { route, backend, cancelKey, greeting };
}
