import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { authenticate, type Credential, checkAudience, type PasswordOptions } from './auth.js';
import type { CancelKey, CancelMap } from './cancel.js';
import { acquireBackend, type BackendSession, parameterStatusMessages } from './connect.js';
import { type ConnectionCapOptions, type OverCap, tooManyConnections } from './connection-caps.js';
import type { PasswordCheck, ProxyDirectory } from './directory.js';
import { errorResponseFor, ProxyError, type ProxyErrorKind } from './errors.js';
import { handshake, normalizeAddress } from './handshake.js';
import type { LoginThrottle } from './login-throttle.js';
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
 * One client connection, phase by phase: handshake (TLS) → startup → auth →
 * route → connect → passthrough. Never throws: every failure becomes an
 * ErrorResponse to the client (when it can still be told) and a log event.
 * `overCap`: the connection is one too many, to be refused once it can be told.
 */
export async function handleClient(socket: Socket, ctx: ProxyContext, overCap?: OverCap): Promise<void> {
  const clientAddress = normalizeAddress(socket.remoteAddress ?? 'unknown');
  let stream: Duplex = socket; // where an ErrorResponse can be written, once the handshake allows it
  let tlsStarted = false;
  let tlsReady = false;
  const ended = new AbortController();
  const preAuthDeadline = setTimeout(() => {
    fail(new ProxyError('PRE_AUTH_TIMEOUT', 'The connection did not authenticate in time.'));
  }, ctx.limits.preAuthTimeoutMs);
  let backend: BackendSession | undefined;
  let user: string | undefined;
  let instance: string | undefined;

  function fail(error: unknown): void {
    if (ended.signal.aborted) return; // already refused, or the client left: a waiting phase giving up says nothing new
    ended.abort();
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
  socket.once('close', () => ended.abort());
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
    if (overCap) throw tooManyConnections(overCap, clientAddress, ctx.limits);
    if (startup.negotiate) {
      stream.write(NegotiateProtocolVersion(startup.negotiate.minor, startup.negotiate.unsupportedOptions));
    }

    const client = { servername: hello.servername, localAddress: socket.localAddress, clientAddress };
    const credential = await authenticate(hello.stream, hello.reader, startup, {
      ...passwordOptions(ctx, client),
      maxPacketBytes: ctx.limits.maxPasswordBytes,
      signal: ended.signal,
    });
    clearTimeout(preAuthDeadline);
    if (ended.signal.aborted) return; // refused meanwhile (e.g. out of time): nothing to connect

    const admitted = await admit(ctx, client, startup, credential, (name) => {
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

/** What the connection knows that authentication needs (both TLS paths). */
export interface ClientFacts {
  servername: string | undefined;
  localAddress: string | undefined;
  clientAddress: string;
}

export function passwordOptions(ctx: ProxyContext, client: ClientFacts): PasswordOptions {
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
export function refusal(
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
export interface Admission {
  backend: BackendSession;
  cancelKey: CancelKey;
  /** AuthenticationOk, ParameterStatus…, BackendKeyData, notices, ReadyForQuery. */
  greeting: Buffer;
}

/**
 * After authentication: route to the instance (native login already has),
 * check the credential opens it, get a backend session, and build the
 * greeting. Throws a ProxyError the client is shown.
 */
export async function admit(
  ctx: ProxyContext,
  client: ClientFacts,
  startup: Startup,
  credential: Credential,
  onRouted: (instance: string) => void,
): Promise<Admission> {
  const route =
    credential.nativeRoute ??
    routeConnection(ctx.directory, { ...client, startup, audience: credential.audience });
  onRouted(route.name);
  if (!credential.nativeRoute) checkAudience(route, credential.audience, startup.user);
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
