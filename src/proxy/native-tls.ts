import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';

/**
 * The optional native TLS path (native/pier_tls.c, built at install when a C
 * compiler is there). JavaScript still reads the socket and decides
 * everything before the splice; the native session only encrypts, decrypts
 * and, once spliced, moves bytes between client and backend in C with no
 * JavaScript per message. Without the module the proxy uses Node's TLS, with
 * the same behaviour. `PIER_NATIVE_TLS=0` turns the native path off.
 */

declare const nativeContextBrand: unique symbol;
declare const nativeSessionBrand: unique symbol;
export type NativeContext = { readonly [nativeContextBrand]: true };
type NativeSession = { readonly [nativeSessionBrand]: true };

interface FeedResult {
  output?: Buffer;
  plaintext?: Buffer;
  secure?: boolean;
  alpn?: string;
  needContext: boolean;
  servername?: string;
  closed: boolean;
  error?: string;
}

export interface NativeTlsBinding {
  context(cert: Buffer, key: Buffer, ciphers: string, ciphersuites: string, groups: string): NativeContext;
  session(context: NativeContext): NativeSession;
  useContext(session: NativeSession, context: NativeContext | undefined): void;
  feed(session: NativeSession, encrypted?: Buffer): FeedResult;
  encrypt(session: NativeSession, plaintext: Buffer): Buffer | undefined;
  shutdown(session: NativeSession): Buffer | undefined;
  splice(
    session: NativeSession,
    clientFd: number,
    backendFd: number,
    leftover: Buffer,
    onEnd: (reusable: boolean, reason: string) => void,
  ): void;
  abort(session: NativeSession): void;
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
      loaded = { binding: createRequire(import.meta.url)(MODULE_PATH) as NativeTlsBinding, why: 'loaded' };
    } catch (error) {
      loaded = { binding: undefined, why: `failed to load: ${(error as Error).message}` };
    }
  }
  return loaded;
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

/**
 * Gives a socket back to Node after a splice. Its stream may still believe a
 * read is under way (it was waiting when the descriptor was taken), so the
 * handle is restarted here; data stays buffered until the stream resumes.
 */
function resumeReading(socket: Socket): void {
  const handle = handleOf(socket);
  if (socket.destroyed || !handle?.readStart) return;
  handle.reading = true;
  handle.readStart();
}

/** Resolves once everything written to the socket so far has reached the kernel. */
function flushed(socket: Socket): Promise<void> {
  if (socket.writableLength === 0) return Promise.resolve();
  return new Promise((resolve) => socket.write(Buffer.alloc(0), () => resolve()));
}

/**
 * A server-side TLS stream over a plain socket, driven by a native session.
 * Reads and writes plaintext like Node's TLSSocket; emits 'secure' after the
 * handshake. `splice` hands both sockets to C for the rest of the session.
 */
export class NativeTlsStream extends Duplex {
  alpnProtocol: string | false = false;
  servername: string | undefined;
  private splicing = false;
  private readonly onSocketData = (chunk: Buffer) => this.process(chunk);
  private readonly onSocketEnd = () => this.push(null);
  private readonly onSocketClose = () => {
    if (this.splicing) this.binding.abort(this.session);
    this.destroy();
  };
  private readonly onSocketError = (error: Error) => this.destroy(error);

  constructor(
    private readonly socket: Socket,
    private readonly binding: NativeTlsBinding,
    private readonly session: NativeSession,
    /** Picks the certificate for an SNI name; undefined keeps the current one. */
    private readonly chooseContext: (servername: string) => Promise<NativeContext | undefined>,
  ) {
    super();
    socket.on('data', this.onSocketData);
    socket.on('end', this.onSocketEnd);
    socket.on('close', this.onSocketClose);
    socket.on('error', this.onSocketError);
  }

  /** Feeds bytes read from the client (or none, to resume a paused handshake). */
  private process(encrypted?: Buffer): void {
    if (this.destroyed) return;
    let result: FeedResult;
    try {
      result = this.binding.feed(this.session, encrypted);
    } catch (error) {
      this.destroy(error as Error);
      return;
    }
    if (result.output) this.socket.write(result.output);
    if (result.error) {
      this.destroy(new Error(result.error));
      return;
    }
    if (result.needContext) {
      const servername = result.servername ?? '';
      this.servername = servername || undefined;
      this.socket.pause();
      this.chooseContext(servername).then(
        (context) => {
          if (this.destroyed) return;
          this.binding.useContext(this.session, context);
          this.socket.resume();
          this.process();
        },
        (error: Error) => this.destroy(error),
      );
      return;
    }
    if (result.secure) {
      this.alpnProtocol = result.alpn || false;
      this.emit('secure');
    }
    if (result.plaintext) this.push(result.plaintext);
    if (result.closed) this.push(null);
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    try {
      const output = this.binding.encrypt(this.session, chunk);
      if (output) this.socket.write(output, callback);
      else callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    const alert = this.binding.shutdown(this.session);
    if (alert) this.socket.write(alert);
    this.socket.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy();
    callback(error);
  }

  /**
   * Moves bytes between client and backend in C until either side goes.
   * `leftover` is plaintext the client sent past the password. Resolves with
   * whether the backend session may be reused (the client ended with an
   * idle-time Terminate); undefined if the sockets cannot be handed over, in
   * which case nothing was changed and the caller splices in JavaScript.
   */
  async splice(backend: Socket, leftover: Buffer): Promise<{ reusable: boolean } | undefined> {
    const clientFd = descriptorOf(this.socket);
    const backendFd = descriptorOf(backend);
    if (clientFd === undefined || backendFd === undefined) return undefined;
    stopReading(this.socket);
    stopReading(backend);
    this.socket.off('data', this.onSocketData);
    // Bytes Node read before it stopped go first: the client's decrypted, the backend's encrypted.
    const pending = [leftover];
    for (const chunk of buffered(this.socket)) {
      const result = this.binding.feed(this.session, chunk);
      if (result.output) this.socket.write(result.output);
      if (result.error || result.closed) return { reusable: false };
      if (result.plaintext) pending.push(result.plaintext);
    }
    for (const chunk of buffered(backend)) {
      const output = this.binding.encrypt(this.session, chunk);
      if (output) this.socket.write(output);
    }
    // C writes to the same sockets next: what Node still holds must reach the kernel first.
    await Promise.all([flushed(this.socket), flushed(backend)]);
    if (this.destroyed || backend.destroyed) return { reusable: false };
    this.splicing = true;
    return new Promise((resolve) => {
      this.binding.splice(this.session, clientFd, backendFd, Buffer.concat(pending), (reusable) => {
        this.splicing = false;
        if (reusable) resumeReading(backend);
        resolve({ reusable });
      });
    });
  }
}

/**
 * Starts TLS on a plain socket with the native session; resolves once the
 * handshake is done. `initial` is the context for the address the client
 * dialled; `chooseContext` answers an SNI name.
 */
export function startNativeTls(
  socket: Socket,
  binding: NativeTlsBinding,
  initial: NativeContext,
  chooseContext: (servername: string) => Promise<NativeContext | undefined>,
  onStarted?: (stream: NativeTlsStream) => void,
): Promise<NativeTlsStream> {
  const stream = new NativeTlsStream(socket, binding, binding.session(initial), chooseContext);
  onStarted?.(stream);
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    const onClose = () => reject(new Error('closed during the TLS handshake'));
    stream.once('error', onError);
    stream.once('close', onClose);
    stream.once('secure', () => {
      stream.off('error', onError);
      stream.off('close', onClose);
      resolve(stream);
    });
    // Flowing again: bytes already buffered (a direct-TLS ClientHello given back with unshift) come first.
    socket.resume();
  });
}
