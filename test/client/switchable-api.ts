import { createServer, request, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What the forwarder does with a request: pass it on, answer 503, or drop the connection. */
export type ApiMode = 'up' | 'unavailable' | 'unreachable';

export interface SwitchableApi {
  url: string;
  mode: ApiMode;
  /** Requests that reached the real API. */
  forwarded: number;
  close(): Promise<void>;
}

/**
 * An HTTP forwarder on 127.0.0.1 in front of Pier's API that a test can
 * switch off: the API goes away for the client while the proxy, and every
 * session already open, keep running.
 */
export async function switchableApi(target: string): Promise<SwitchableApi> {
  const upstream = new URL(target);
  const sockets = new Set<Socket>();
  const state: SwitchableApi = {
    url: '',
    mode: 'up',
    forwarded: 0,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((req, res) => {
    if (state.mode === 'unreachable') {
      req.socket.destroy();
      return;
    }
    if (state.mode === 'unavailable') {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error_code: 'TEMPORARILY_UNAVAILABLE', message: 'The service is down.' }));
      return;
    }
    state.forwarded++;
    const forward = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}
