import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  type AuthFailureLimiter,
  authenticate,
  checkAudience,
  checkNativePassword,
  type PasswordResult,
} from './auth.js';
import type { CancelKey, CancelMap } from './cancel.js';
import { acquireBackend, type BackendSession, parameterStatusMessages } from './connect.js';
import type { PasswordCheck, ProxyDirectory } from './directory.js';
import { errorResponseFor, ProxyError, type ProxyErrorKind } from './errors.js';
import { handshake } from './handshake.js';
import { passthrough } from './passthrough.js';
import type { WarmPool } from './pool.js';
import {
  AuthenticationOk,
  BackendKeyData,
  NegotiateProtocolVersion,
  ProtocolViolation,
  ReadyForQuery,
} from './protocol.js';
import { routeConnection } from './route.js';
import { readStartup, type Startup } from './startup.js';
import type { TlsMaterial } from './tls.js';

export interface ProxyLimits {
  /** Handshake, startup and authentication together must finish within this. */
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
  failures: AuthFailureLimiter;
  limits: ProxyLimits;
  log(event: ProxyEvent): void;
}

/**
 * One client connection, phase by phase: handshake (TLS) → startup → auth →
 * route → connect → passthrough. Never throws: every failure becomes an
 * ErrorResponse to the client (when it can still be told) and a log event.
 */
export async function handleClient(socket: Socket, ctx: ProxyContext): Promise<void> {
  const clientAddress = socket.remoteAddress ?? 'unknown';
  let stream: Duplex = socket; // where an ErrorResponse can be written, once the handshake allows it
  let tlsStarted = false;
  let tlsReady = false;
  const preAuthDeadline = setTimeout(() => {
    fail(new ProxyError('PRE_AUTH_TIMEOUT', 'The connection did not authenticate in time.'));
  }, ctx.limits.preAuthTimeoutMs);
  let backend: BackendSession | undefined;
  let user: string | undefined;
  let instance: string | undefined;

  function fail(error: unknown): void {
    const { packet, closedByPeer } = refusal(ctx, error, { client: clientAddress, user, instance });
    // Mid-TLS-handshake there is no channel to speak on: just close.
    const canSpeak = tlsReady || !tlsStarted;
    if (canSpeak && !closedByPeer && stream.writable) stream.end(packet);
    const hardClose = setTimeout(() => {
      stream.destroy();
      socket.destroy();
    }, 1000);
    hardClose.unref();
  }

  socket.on('error', () => {}); // failures surface through the phase that was waiting
  try {
    const hello = await handshake(socket, {
      tls: ctx.tls,
      directory: ctx.directory,
      maxPacketBytes: ctx.limits.maxStartupPacketBytes,
      onTlsStarted(tlsStream) {
        stream = tlsStream;
        tlsStarted = true;
        tlsStream.once('secure', () => {
          tlsReady = true;
        });
      },
    });
    if (hello.kind === 'cancel') {
      clearTimeout(preAuthDeadline);
      socket.destroy();
      ctx.log({ event: 'cancel', client: clientAddress });
      return ctx.cancels.forward(hello);
    }

    const startup = await readStartup(hello.reader, ctx.limits.maxStartupPacketBytes);
    if (startup.kind === 'cancel') {
      clearTimeout(preAuthDeadline);
      stream.destroy();
      ctx.log({ event: 'cancel', client: clientAddress });
      return ctx.cancels.forward(startup);
    }
    user = startup.user;
    if (startup.negotiate) {
      stream.write(NegotiateProtocolVersion(startup.negotiate.minor, startup.negotiate.unsupportedOptions));
    }

    const { audience, nativePassword } = await authenticate(hello.stream, hello.reader, startup, {
      passwords: ctx.passwords,
      failures: ctx.failures,
      clientAddress,
      maxPacketBytes: ctx.limits.maxPasswordBytes,
      allowNativePassword: ctx.directory.verifyNativePassword !== undefined,
    });
    clearTimeout(preAuthDeadline);

    const client = { servername: hello.servername, localAddress: socket.localAddress, clientAddress };
    const admitted = await admit(ctx, client, startup, { audience, nativePassword }, (name) => {
      instance = name;
    });
    backend = admitted.backend;
    stream.write(admitted.greeting);
    ctx.log({ event: 'connected', client: clientAddress, user, instance });

    const leftover = hello.reader.detach();
    const { reusable } = await passthrough(hello.stream, backend.socket, leftover);
    ctx.cancels.unregister(admitted.cancelKey);
    if (reusable) await ctx.pool.release(backend);
    else backend.socket.destroy();
    hello.stream.destroy();
    ctx.log({ event: 'closed', client: clientAddress, user, instance });
  } catch (error) {
    clearTimeout(preAuthDeadline);
    backend?.socket.destroy();
    fail(error);
  }
}

/**
 * A failed connection: the ErrorResponse to send (unless the client already
 * left) and the 'refused' log event.
 */
export function refusal(
  ctx: ProxyContext,
  error: unknown,
  who: { client: string; user?: string; instance?: string },
): { packet: Buffer; closedByPeer: boolean } {
  const { kind, packet } = errorResponseFor(error);
  const closedByPeer = error instanceof ProtocolViolation && error.kind === 'CLOSED';
  if (!closedByPeer) ctx.log({ event: 'refused', kind, message: (error as Error).message, ...who });
  return { packet, closedByPeer };
}

/** What a client is let in with: its backend, its cancel key, and the greeting that ends authentication. */
export interface Admission {
  backend: BackendSession;
  cancelKey: CancelKey;
  /** AuthenticationOk, ParameterStatus…, BackendKeyData, notices, ReadyForQuery. */
  greeting: Buffer;
}

/**
 * After the password: route to the instance, check the credential opens it
 * (or the role's own password, with native login), get a backend session,
 * and build the greeting. Throws a ProxyError the client is shown.
 */
export async function admit(
  ctx: ProxyContext,
  client: { servername: string | undefined; localAddress: string | undefined; clientAddress: string },
  startup: Startup,
  credential: PasswordResult,
  onRouted: (instance: string) => void,
): Promise<Admission> {
  const route = routeConnection(ctx.directory, {
    servername: client.servername,
    localAddress: client.localAddress,
    startup,
    audience: credential.audience,
  });
  onRouted(route.name);
  if (credential.nativePassword !== undefined) {
    await checkNativePassword(
      route,
      ctx.directory,
      startup.user,
      credential.nativePassword,
      ctx.failures,
      client.clientAddress,
    );
  } else {
    checkAudience(route, credential.audience, startup.user);
  }
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
  return { backend, cancelKey, greeting };
}
