import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * The last phase: splice client and backend. No message is parsed; each
 * chunk costs one write and two O(1) checks that decide whether the backend
 * session may be reused when the client leaves:
 * - the backend's latest chunk ended with ReadyForQuery 'I' (idle, no
 *   transaction) and the client sent nothing since, and
 * - the client's next chunk is exactly Terminate. It is held back; if the
 *   client then closes, the session goes back to the pool (which proves the
 *   state clean again before reuse). If more data follows, it is forwarded.
 *
 * Resolves when both sides are done, with whether the backend is reusable.
 */
export function passthrough(
  client: Duplex,
  backend: Socket,
  clientLeftover: Buffer,
): Promise<{ reusable: boolean }> {
  return new Promise((resolve) => {
    let backendIdle = true; // the backend just sent ReadyForQuery 'I' at startup
    let heldTerminate = false;
    let finished = false;

    const finish = (reusable: boolean) => {
      if (finished) return;
      finished = true;
      client.off('data', onClientData);
      backend.off('data', onBackendData);
      backend.off('end', onBackendGone);
      backend.off('close', onBackendGone);
      backend.off('error', onBackendGone);
      client.off('drain', resumeBackend);
      backend.off('drain', resumeClient);
      if (reusable) backend.pause();
      resolve({ reusable });
    };

    function resumeBackend() {
      backend.resume();
    }
    function resumeClient() {
      client.resume();
    }

    function onClientData(chunk: Buffer) {
      if (backendIdle && chunk.length === 5 && isTerminate(chunk)) {
        heldTerminate = true;
        return;
      }
      if (heldTerminate) {
        heldTerminate = false;
        backend.write(TERMINATE_BYTES);
      }
      backendIdle = false;
      if (!backend.write(chunk)) {
        client.pause();
        backend.once('drain', resumeClient);
      }
    }

    function onBackendData(chunk: Buffer) {
      backendIdle = endsWithReadyForQueryIdle(chunk);
      if (!client.write(chunk)) {
        backend.pause();
        client.once('drain', resumeBackend);
      }
    }

    const onClientGone = () => {
      if (finished) return;
      if (heldTerminate && !backend.destroyed) return finish(true);
      backend.destroy();
      finish(false);
    };
    const onBackendGone = () => {
      if (finished) return;
      client.end();
      backend.destroy();
      finish(false);
    };

    client.on('data', onClientData);
    client.once('end', onClientGone);
    client.once('close', onClientGone);
    client.on('error', onClientGone);
    backend.on('data', onBackendData);
    backend.once('end', onBackendGone);
    backend.once('close', onBackendGone);
    backend.on('error', onBackendGone);
    // Either side may have gone while the session was being set up; its events are past.
    if (client.destroyed || client.readableEnded) return onClientGone();
    if (backend.destroyed || backend.readableEnded) return onBackendGone();
    if (clientLeftover.length > 0) onClientData(clientLeftover);
    client.resume();
    backend.resume();
  });
}

const TERMINATE_BYTES = Buffer.from([0x58, 0, 0, 0, 4]);

function isTerminate(chunk: Buffer): boolean {
  return chunk[0] === 0x58 && chunk[1] === 0 && chunk[2] === 0 && chunk[3] === 0 && chunk[4] === 4;
}

/** `Z 0 0 0 5 'I'` at the very end of the chunk. */
function endsWithReadyForQueryIdle(chunk: Buffer): boolean {
  const n = chunk.length;
  return (
    n >= 6 &&
    chunk[n - 1] === 0x49 &&
    chunk[n - 2] === 5 &&
    chunk[n - 3] === 0 &&
    chunk[n - 4] === 0 &&
    chunk[n - 5] === 0 &&
    chunk[n - 6] === 0x5a
  );
}
