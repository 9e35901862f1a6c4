import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { plainHttpWarning } from '../../src/server/api-tls.js';
import { removePier, runPier, startPier, tempDataDir } from '../helpers/pier.js';

const execFileAsync = promisify(execFile);
const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const WARNING =
  /warning: the API listens on 0\.0\.0\.0 over plain HTTP, so access tokens and database credentials travel in clear text\. Pass --api-tls-cert and --api-tls-key to serve HTTPS, or listen on 127\.0\.0\.1\./;

/**
 * The official SDK in a process of its own, trusting `ca` as a user would
 * (NODE_EXTRA_CA_CERTS). It checks certificates only when told `skipVerify: false`.
 */
async function sdkMe(host: string, token: string, ca?: string): Promise<string> {
  const script = `
    import { WorkspaceClient } from '@databricks/sdk-experimental';
    const w = new WorkspaceClient({ host: process.env.DATABRICKS_HOST, token: process.env.DATABRICKS_TOKEN, authType: 'pat', skipVerify: false });
    process.stdout.write((await w.currentUser.me()).userName);`;
  const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: REPO,
    env: {
      ...process.env,
      DATABRICKS_HOST: host,
      DATABRICKS_TOKEN: token,
      ...(ca ? { NODE_EXTRA_CA_CERTS: ca } : {}),
    },
    timeout: 60_000,
  });
  return stdout;
}

test('only loopback listeners go without a warning', () => {
  for (const host of ['127.0.0.1', '127.1.0.9', 'localhost', '::1'])
    assert.equal(plainHttpWarning(host, undefined), undefined);
  assert.match(plainHttpWarning('0.0.0.0', undefined) ?? '', WARNING);
  assert.match(plainHttpWarning('10.0.0.5', undefined) ?? '', /10\.0\.0\.5 over plain HTTP/);
});

test('--api-tls-cert/--api-tls-key serve the API over HTTPS; plain HTTP on a shared address warns', async () => {
  // A first start over plain HTTP on every address: warned, and it makes the certificates reused below.
  const plain = await startPier({ args: ['--host', '0.0.0.0'] });
  assert.match(plain.output(), WARNING);
  assert.match(plain.apiUrl, /^http:\/\//);
  await plain.stop();

  const tls = join(plain.dataDir, 'tls');
  const flags = ['--api-tls-cert', join(tls, 'server.crt'), '--api-tls-key', join(tls, 'server.key')];
  const pier = await startPier({ dataDir: plain.dataDir, args: ['--host', '0.0.0.0', ...flags] });
  try {
    assert.doesNotMatch(pier.output(), /plain HTTP/);
    assert.match(pier.apiUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
    const env = await runPier(['status', '--data-dir', pier.dataDir, '-o', 'env']);
    assert.match(env.stdout, new RegExp(`^export DATABRICKS_HOST=${pier.apiUrl}$`, 'm'));

    // The SDK, trusting the CA, talks to it; without the CA it refuses the certificate.
    const ca = join(tls, 'ca.crt');
    assert.equal(await sdkMe(pier.apiUrl, pier.adminToken, ca), 'admin@pier.local');
    await assert.rejects(sdkMe(pier.apiUrl, pier.adminToken), /certificate/i);
    // So does the pier CLI, with the host and token `pier status -o env` printed.
    const listed = await runPier(['database', 'list-database-instances'], {
      DATABRICKS_HOST: pier.apiUrl,
      DATABRICKS_TOKEN: pier.adminToken,
      NODE_EXTRA_CA_CERTS: ca,
    });
    assert.equal(listed.code, 0, listed.stderr);
    // The console's session cookie is Secure over HTTPS (docs/console.md).
    const caPem = await readFile(ca);
    const setCookie = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest(
        `${pier.apiUrl}/console/session`,
        { method: 'POST', ca: caPem, headers: { 'content-type': 'application/json' } },
        (res) => {
          res.resume();
          resolve(String(res.headers['set-cookie'] ?? ''));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ token: pier.adminToken }));
    });
    assert.match(setCookie, /^pier_session=[\w-]+;.*; HttpOnly; Secure; SameSite=Strict$/);
    // Nothing answers in clear text on the API port.
    await assert.rejects(
      fetch(pier.apiUrl.replace('https:', 'http:'), { signal: AbortSignal.timeout(5000) }),
    );
  } finally {
    await removePier(pier);
  }
});

test('a lone --api-tls flag, an unreadable file or a key that is not the certificate is a clear error', async () => {
  const dataDir = await tempDataDir();
  const up = (args: string[]) => runPier(['up', '--data-dir', dataDir, '--api-port', '0', ...args]);
  const lone = await up(['--api-tls-cert', '/nonexistent.crt']);
  assert.equal(lone.code, 1);
  assert.equal(
    lone.stderr.trim(),
    'Error: --api-tls-cert and --api-tls-key go together: pass both (HTTPS API), or neither.',
  );
  const missing = await up(['--api-tls-cert', '/nonexistent.crt', '--api-tls-key', '/nonexistent.key']);
  assert.equal(missing.stderr.trim(), 'Error: Cannot read --api-tls-cert /nonexistent.crt (ENOENT).');
  const pem = join(REPO, 'package.json');
  const garbage = await up(['--api-tls-cert', pem, '--api-tls-key', pem]);
  assert.equal(garbage.code, 1);
  assert.match(garbage.stderr, /are not a PEM certificate and its private key/);
  await runPier(['down', '--data-dir', dataDir]);
  await rm(dataDir, { recursive: true, force: true });
});
