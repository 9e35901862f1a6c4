import type { BackendSession } from './backend-session.js';
import type {
  ClientConnection,
  ConnectionEvents,
  Hello,
  PasswordMessage,
  Splice,
} from './client-connection.js';
import type { OverCap } from './connection-caps.js';
import type { InstanceRoute } from './directory.js';
import { ProxyError } from './errors.js';
import { checkAlpn, plaintextRequest } from './handshake.js';
import { type AdoptedBackend, adoptBackend, heldBackendChannel } from './native-backend.js';
import {
  type NativeConnection,
  type NativeContext,
  NativeEvent,
  type NativeFront,
  type NativeTlsBinding,
} from './native-tls.js';
import { resetSession } from './pool.js';
import { ProtocolViolation } from './protocol.js';
import { parseStartup, type StartupResult } from './startup.js';

/** An event C sent for this connection, as `next()` hands it to the phase waiting for it. */
interface Arrival {
  type: number;
  a: unknown;
  b: unknown;
  c: unknown;
}

/** The certificates the native path presents, and a cache so most handshakes need no promise. */
export interface NativeCertificates {
  defaultContext: NativeContext;
  contextFor(route: InstanceRoute): Promise<NativeContext>;
  /** Contexts already issued, by `certificateKey`. */
  ready: Map<string, NativeContext>;
}

/**
 * A client connection that C owns (native/pier_tls.c): C runs each phase on
 * its own and reports through events, which arrive here (`deliver`) and
 * wait for the phase `handleClient` is in. Events that belong to no phase —
 * out of time, the client gone, a protocol breach while the password is
 * being checked — go to the `ConnectionEvents`.
 */
export class NativeClient implements ClientConnection {
  private events: ConnectionEvents | undefined;
  private readonly inbox: Arrival[] = [];
  private waiter: ((arrival: Arrival) => void) | undefined;
  private spliceEnded: ((outcome: { reusable: boolean }) => void) | undefined;
  private done = false;

  constructor(
    private readonly binding: NativeTlsBinding,
    private readonly front: () => NativeFront,
    private readonly conn: NativeConnection,
    private readonly certificates: NativeCertificates,
    private readonly resetTimeoutMs: number,
    readonly clientAddress: string,
    readonly localAddress: string | undefined,
    readonly overCap: OverCap,
  ) {}

  /** An event from C for this connection. */
  deliver(type: number, a: unknown, b: unknown, c: unknown): void {
    switch (type) {
      case NativeEvent.SPLICE_END:
        this.onSpliceEnd(a as boolean);
        return;
      case NativeEvent.TIMEOUT:
        this.events?.timedOut();
        return;
      case NativeEvent.CLOSED:
        this.events?.closed();
        break; // and a phase still reading learns it
      case NativeEvent.BAD_PACKET:
        if (!this.waiter) {
          this.events?.failed(badPacket(a, b));
          return;
        }
        break;
    }
    const waiter = this.waiter;
    this.waiter = undefined;
    if (waiter) waiter({ type, a, b, c });
    else this.inbox.push({ type, a, b, c });
  }

  watch(events: ConnectionEvents): void {
    this.events = events;
  }

  async handshake(
    certificateFor: (servername: string | undefined) => InstanceRoute | undefined,
  ): Promise<Hello> {
    const { type, a } = await this.next();
    if (type === NativeEvent.PLAIN) return plaintextRequest(a as Buffer);
    const servername = (a as string) || undefined;
    const route = certificateFor(servername);
    this.binding.useContext(this.conn, route ? await this.contextFor(route) : undefined);
    return { kind: 'tls', servername };
  }

  async readStartup(): Promise<StartupResult> {
    const { a, b, c } = await this.next(NativeEvent.STARTUP);
    checkAlpn(c as boolean, (b as string) || undefined);
    return parseStartup(a as Buffer);
  }

  async askPassword(before: Buffer | undefined): Promise<PasswordMessage> {
    this.binding.askPassword(this.conn, before);
    const { a, b } = await this.next(NativeEvent.PASSWORD);
    return { type: a as number, body: b as Buffer };
  }

  authenticated(): void {
    this.binding.authenticated(this.conn);
  }

  async splice(backend: BackendSession, greeting: Buffer, mayReset: boolean): Promise<Splice> {
    const fromBackend = backend.native ? EMPTY : await adoptBackend(this.binding, this.front(), backend);
    const ended = new Promise<{ reusable: boolean }>((resolve) => {
      this.spliceEnded = resolve;
    });
    const { handle } = backend.native as AdoptedBackend;
    const spliced = this.binding.splice(this.conn, handle, greeting, fromBackend, mayReset);
    if (spliced === 1) return { kind: 'spliced', ended };
    this.spliceEnded = undefined;
    return { kind: spliced === 0 ? 'client-gone' : 'backend-broke' };
  }

  /** The same reset as on Node's sockets, through C, which holds the backend until it is told. */
  async reset(backend: BackendSession): Promise<boolean> {
    const adopted = backend.native as AdoptedBackend;
    const channel = heldBackendChannel(this.binding, adopted);
    try {
      const clean = await resetSession(backend, this.resetTimeoutMs, channel);
      if (clean) this.binding.backendIdle(adopted.handle);
      return clean;
    } finally {
      channel.destroy();
    }
  }

  refuse(lastWords: Buffer | undefined): void {
    this.end(lastWords);
  }

  close(): void {
    this.end(undefined);
  }

  private end(lastWords: Buffer | undefined): void {
    if (this.done) return;
    this.done = true;
    this.binding.end(this.conn, lastWords);
    // C says nothing more of this connection: a phase still waiting gives up.
    this.waiter?.({ type: NativeEvent.CLOSED, a: 'ended', b: undefined, c: undefined });
    this.waiter = undefined;
  }

  private onSpliceEnd(reusable: boolean): void {
    this.spliceEnded?.({ reusable });
    this.spliceEnded = undefined;
  }

  /** The next event; a failure (bad packet, closed) or an event other than `expected` throws. */
  private async next(expected?: number): Promise<Arrival> {
    if (this.done && this.inbox.length === 0) throw new ProtocolViolation('CLOSED', 'ended');
    const arrival =
      this.inbox.shift() ??
      (await new Promise<Arrival>((resolve) => {
        this.waiter = resolve;
      }));
    const { type, a, b } = arrival;
    if (type === NativeEvent.BAD_PACKET) throw badPacket(a, b);
    if (type === NativeEvent.CLOSED) throw new ProtocolViolation('CLOSED', String(a ?? 'closed'));
    if (expected !== undefined && type !== expected) {
      throw new ProxyError('INTERNAL', `native event ${type} where ${expected} was expected`);
    }
    return arrival;
  }

  private async contextFor(route: InstanceRoute): Promise<NativeContext> {
    const { ready } = this.certificates;
    const key = certificateKey(route);
    const cached = ready.get(key);
    if (cached) return cached;
    const issued = await this.certificates.contextFor(route);
    if (ready.size > 10_000) ready.clear();
    ready.set(key, issued);
    return issued;
  }
}

const EMPTY = Buffer.alloc(0);

function certificateKey(route: InstanceRoute): string {
  return `${route.dnsName},${route.address ?? ''}`;
}

function badPacket(kind: unknown, message: unknown): Error {
  return kind === 'DATA_BEFORE_TLS'
    ? new ProxyError('PROTOCOL_VIOLATION', message as string)
    : new ProtocolViolation(kind as 'PROTOCOL_VIOLATION' | 'PACKET_TOO_LARGE', message as string);
}
