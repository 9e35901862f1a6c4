/**
 * Builds the proxy's optional native TLS path (native/pier_tls.c) into
 * native/build/pier_tls.node with the system C compiler and the headers that
 * ship with Node.js. It needs nothing else: OpenSSL is the copy inside Node.
 * Without a compiler or the headers Pier runs the same proxy in JavaScript,
 * so this never fails the install; it says what it did.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native', 'pier_tls.c');
const output = join(root, 'native', 'build', 'pier_tls.node');
const compiler = process.env.CC || 'cc';

function headerDirectory() {
  const candidates = [
    process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
    join(dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ].filter(Boolean);
  return candidates.find((dir) => existsSync(join(dir, 'node_api.h')) && existsSync(join(dir, 'openssl', 'ssl.h')));
}

const say = (message) => process.stderr.write(`pier: ${message}\n`);
const includes = headerDirectory();
if (process.platform !== 'linux') {
  say('native TLS path: not built (Linux only); the proxy uses its JavaScript TLS path.');
} else if (!includes) {
  say('native TLS path: not built (no Node.js headers with OpenSSL found); the proxy uses its JavaScript TLS path.');
} else {
  mkdirSync(dirname(output), { recursive: true });
  const partial = `${output}.partial-${process.pid}`;
  try {
    execFileSync(
      compiler,
      ['-O2', '-fPIC', '-shared', '-Wall', '-Wextra', '-Wno-unused-parameter', `-I${includes}`, source, '-o', partial],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    renameSync(partial, output);
  } catch (error) {
    const detail =
      error.code === 'ENOENT'
        ? `no C compiler (${compiler})`
        : String(error.stderr ?? '').trim() || `${compiler} exited with status ${error.status}`;
    say(`native TLS path: not built (${detail}); the proxy uses its JavaScript TLS path.`);
  }
}
