/**
 * One Pier proxy for `npm run bench:proxy`, in a process of its own, so that
 * the CPU time, garbage collection and JIT state measured for it are its own.
 * Prints `{"port", "tlsPath", "why"}` as one line on stdout once it listens;
 * SIGTERM closes it.
 *
 *   node dist/bench/proxy-server.js '{"tlsDir": …, "socketDir": …, "uid": …, "publicJwk": …, "nativeTls": true}'
 */
import type { JWK } from 'jose';
import { credentialPasswordCheck, startProxy, staticDirectory } from '../src/proxy/index.js';

interface ProxyServerConfig {
  tlsDir: string;
  socketDir: string;
  uid: string;
  publicJwk: JWK;
  nativeTls: boolean;
}

const config = JSON.parse(process.argv[2] ?? '{}') as ProxyServerConfig;
const proxy = await startProxy({
  port: 0,
  tls: { dir: config.tlsDir },
  directory: staticDirectory([
    {
      name: 'bench',
      uid: config.uid,
      state: 'AVAILABLE',
      dnsName: 'bench.pier.test',
      socketDir: config.socketDir,
    },
  ]),
  passwords: credentialPasswordCheck({ publicKeys: () => [config.publicJwk] }),
  warmPool: { maxIdlePerKey: 64 },
  nativeTls: config.nativeTls,
});
process.stdout.write(
  `${JSON.stringify({ port: proxy.port, tlsPath: proxy.tlsPath.kind, why: proxy.tlsPath.why })}\n`,
);
process.once('SIGTERM', () => {
  void proxy.close().then(() => process.exit(0));
});
