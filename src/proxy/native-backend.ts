import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { BackendSession } from './backend-session.js';
import type { NativeBackend, NativeFront, NativeTlsBinding } from './native-tls.js';

/** A backend session C has adopted: C's handle, and the object C reports its events with. */
export interface AdoptedBackend {
  handle: NativeBackend;
  state: {
    session: BackendSession;
    /** While it is reset: its output (a Buffer), or undefined when it is lost. */
    resetting?: (data: Buffer | undefined) => void;
  };
}

/**
 * Hands a backend session to C for the rest of its life: Node stops reading
 * it for good, and closing Node's socket closes C's copy too. Returns what
 * Node had already read from it (normally nothing), for the client.
 */
export async function adoptBackend(
  binding: NativeTlsBinding,
  front: NativeFront,
  session: BackendSession,
): Promise<Buffer> {
  const { socket } = session;
  const fd = descriptorOf(socket);
  if (fd === undefined) throw new Error('the backend socket has no descriptor');
  stopReading(socket);
  const fromBackend = socket.readableLength > 0 ? Buffer.concat([...buffered(socket)]) : Buffer.alloc(0);
  if (socket.writableLength > 0) await flushed(socket);
  const state: AdoptedBackend['state'] = { session };
  const handle = binding.adoptBackend(front, fd, state);
  const adopted: AdoptedBackend = { handle, state };
  session.native = adopted;
  socket.once('close', () => binding.closeBackend(handle));
  return fromBackend;
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

/**
 * A held backend as a stream, for the reset (pool.ts `resetSession`): writes
 * go through C, C's BACKEND_DATA events come out. Destroying it ends the
 * reset, not the session.
 */
export function heldBackendChannel(binding: NativeTlsBinding, adopted: AdoptedBackend): Duplex {
  const channel = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, done) {
      done(binding.backendWrite(adopted.handle, chunk) ? null : new Error('the backend cannot be written'));
    },
  });
  adopted.state.resetting = (data) => {
    if (data) channel.push(data);
    else channel.destroy();
  };
  channel.once('close', () => {
    adopted.state.resetting = undefined;
  });
  return channel;
}
