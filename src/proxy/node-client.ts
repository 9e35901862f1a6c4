import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
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
import { handshake } from './handshake.js';
import { passthrough } from './passthrough.js';
import { resetSession } from './pool.js';
import { AuthenticationCleartextPassword, type PacketReader } from './protocol.js';
import { normalizeAddress } from './route.js';
import { readStartup, type StartupResult } from './startup.js';
import type { TlsMaterial } from './tls.js';

/** The limits a Node-socket connection enforces while it reads. */
export interface NodeClientLimits {
  preAuthTimeoutMs: number;
  maxStartupPacketBytes: number;
  maxPasswordBytes: number;
  /** How long the reset of a backend the client left may take (the warm pool's `resetTimeoutMs`). */
  resetTimeoutMs: number;
}

/**
 * A client connection on Node's own sockets and TLS (the JavaScript path):
 * handshake.ts for the handshake, passthrough.ts for the splice, the pool's
 * reset for a backend the client left clean.
 */
export class NodeClient implements ClientConnection {
  readonly clientAddress: string;
  readonly localAddress: string | undefined;
  /** Where an ErrorResponse can be written, once the handshake allows it. */
  private stream: Duplex;
  private reader: PacketReader | undefined;
  private tlsStarted = false;
  private tlsReady = false;
  private deadline: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly tls: TlsMaterial,
    private readonly limits: NodeClientLimits,
    readonly overCap: OverCap,
  ) {
    this.clientAddress = normalizeAddress(socket.remoteAddress ?? 'unknown');
    this.localAddress = socket.localAddress;
    this.stream = socket;
  }

  watch(events: ConnectionEvents): void {
    this.deadline = setTimeout(events.timedOut, this.limits.preAuthTimeoutMs);
    this.socket.on('error', () => {}); // failures surface through the phase that was waiting
    this.socket.once('close', () => {
      this.authenticated();
      events.closed();
    });
  }

  async handshake(
    certificateFor: (servername: string | undefined) => InstanceRoute | undefined,
  ): Promise<Hello> {
    const hello = await handshake(this.socket, {
      tls: this.tls,
      certificateFor,
      maxPacketBytes: this.limits.maxStartupPacketBytes,
      onTlsStarted: (tlsStream) => {
        this.stream = tlsStream;
        this.tlsStarted = true;
        tlsStream.once('secure', () => {
          this.tlsReady = true;
        });
      },
    });
    if (hello.kind === 'cancel') return hello;
    this.reader = hello.reader;
    return { kind: 'tls', servername: hello.servername };
  }

  readStartup(): Promise<StartupResult> {
    return readStartup(this.reader as PacketReader, this.limits.maxStartupPacketBytes);
  }

  async askPassword(before: Buffer | undefined): Promise<PasswordMessage> {
    if (before) this.stream.write(before);
    this.stream.write(AuthenticationCleartextPassword());
    return (this.reader as PacketReader).readMessage(this.limits.maxPasswordBytes);
  }

  authenticated(): void {
    clearTimeout(this.deadline);
  }

  async splice(backend: BackendSession, greeting: Buffer): Promise<Splice> {
    this.stream.write(greeting);
    const leftover = (this.reader as PacketReader).detach();
    const ended = passthrough(this.stream, backend.socket, leftover).then((outcome) => {
      this.stream.destroy();
      return outcome;
    });
    return { kind: 'spliced', ended };
  }

  reset(backend: BackendSession): Promise<boolean> {
    return resetSession(backend, this.limits.resetTimeoutMs);
  }

  refuse(lastWords: Buffer | undefined): void {
    this.authenticated();
    // Mid-TLS-handshake there is no channel to speak on: just close.
    const canSpeak = this.tlsReady || !this.tlsStarted;
    if (canSpeak && lastWords && this.stream.writable) this.stream.end(lastWords);
    const hardClose = setTimeout(() => this.close(), 1000);
    hardClose.unref();
  }

  close(): void {
    this.authenticated();
    this.stream.destroy();
    this.socket.destroy();
  }
}
