import type { BackendSession } from './backend-session.js';
import type { OverCap } from './connection-caps.js';
import type { InstanceRoute } from './directory.js';
import type { StartupResult } from './startup.js';

/**
 * What the proxy needs of one client connection, whichever TLS path carries
 * it: node-client.ts (Node's sockets and TLS) and native-client.ts
 * (native/pier_tls.c). `handleClient` (connection.ts) drives either through
 * this, phase by phase, and takes every decision itself; an implementation
 * only moves bytes and reports what the client did.
 */
export interface ClientConnection {
  /** The client's address, normalized (what the caps and the login throttle count). */
  readonly clientAddress: string;
  /** The address the client dialled: a per-instance address routes. */
  readonly localAddress: string | undefined;
  /** The connection is one over a cap: it is refused once it can be told (after the startup packet). */
  readonly overCap: OverCap | undefined;

  /** Called once, before the first phase: how to report what happens between phases. */
  watch(events: ConnectionEvents): void;
  /**
   * Handshake: agree on TLS, presenting the certificate of the instance
   * `certificateFor` names (undefined: the default one). A CancelRequest may
   * come in the clear instead; a plaintext startup is refused (ProxyError).
   */
  handshake(certificateFor: (servername: string | undefined) => InstanceRoute | undefined): Promise<Hello>;
  /** Startup: the StartupMessage inside TLS, or a CancelRequest sent through TLS. */
  readStartup(): Promise<StartupResult>;
  /** Sends `before` (if any) and AuthenticationCleartextPassword; resolves with the client's answer. */
  askPassword(before: Buffer | undefined): Promise<PasswordMessage>;
  /** The password held: the pre-authentication deadline no longer applies. */
  authenticated(): void;
  /**
   * Passthrough: sends `greeting` (AuthenticationOk … ReadyForQuery) and
   * joins client and backend. `mayReset`: a client that leaves cleanly may
   * leave its backend to be reset for the next one.
   */
  splice(backend: BackendSession, greeting: Buffer, mayReset: boolean): Promise<Splice>;
  /**
   * Proves a backend whose client left cleanly reusable: DISCARD ALL, then
   * the clean-state check (pool.ts). Called only after a splice that ended reusable.
   */
  reset(backend: BackendSession): Promise<boolean>;
  /** Says `lastWords` (an ErrorResponse) if the client can still be told, then closes. */
  refuse(lastWords: Buffer | undefined): void;
  /** Closes without a word (a CancelRequest was all it had to say). */
  close(): void;
}

/** What a connection reports on its own, whatever phase `handleClient` is waiting in. */
export interface ConnectionEvents {
  /** The pre-authentication deadline passed. */
  timedOut(): void;
  /** The client went away before the splice. */
  closed(): void;
  /** The client broke the protocol while no phase was reading (e.g. piled data up during the password check). */
  failed(error: unknown): void;
}

/** The first phase's outcome: TLS is up (with the SNI name, if any), or a CancelRequest came in the clear. */
export type Hello = { kind: 'tls'; servername: string | undefined } | CancelRequestKey;

export interface CancelRequestKey {
  kind: 'cancel';
  processId: number;
  secretKey: number;
}

/** The client's answer to AuthenticationCleartextPassword: message type and body. */
export interface PasswordMessage {
  type: number;
  body: Buffer;
}

/**
 * How a splice went: joined (`ended` resolves when either side leaves, with
 * whether the backend may be reused), or not joined and nothing taken —
 * the client left meanwhile (the backend is still good), or the backend
 * broke while it waited (try another).
 */
export type Splice =
  | { kind: 'spliced'; ended: Promise<{ reusable: boolean }> }
  | { kind: 'client-gone' }
  | { kind: 'backend-broke' };
