import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createPool, oauthM2MSource, type PierClientError, workspaceApi } from 'pier/client';

/**
 * A tiny stand-in for a workspace's OAuth endpoint and one REST call,
 * shaped as Databricks documents them; Pier's own token endpoint is
 * exercised where it is served.
 */
describe('OAuth machine-to-machine credentials', () => {
  let server: Server;
  let host: string;
  const tokenRequests: { authorization?: string; body: string }[] = [];
  let issued = 0;

  before(async () => {
    server = createServer(async (req, res) => {
      const body = await read(req);
      if (req.method === 'POST' && req.url === '/oidc/v1/token') {
        tokenRequests.push({ authorization: req.headers.authorization, body });
        const expected = `Basic ${Buffer.from('app-client-id:s3cret').toString('base64')}`;
        if (req.headers.authorization !== expected) {
          res.writeHead(401, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({ error: 'invalid_client', error_description: 'Client authentication failed' }),
          );
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            access_token: `m2m-token-${++issued}`,
            token_type: 'Bearer',
            expires_in: 3600,
            scope: 'all-apis',
          }),
        );
        return;
      }
      if (req.url === '/api/2.0/preview/scim/v2/Me') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ userName: 'app-client-id', seenBearer: req.headers.authorization }));
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    host = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('gets a token with the client credentials grant, the secret in the Basic header', async () => {
    const started = Date.now();
    const credential = await oauthM2MSource({
      host,
      clientId: 'app-client-id',
      clientSecret: 's3cret',
    }).fetchCredential();
    assert.match(credential.token, /^m2m-token-\d+$/);
    assert.ok(credential.expiresAt >= started + 3600_000 && credential.expiresAt <= Date.now() + 3600_000);
    const last = tokenRequests[tokenRequests.length - 1];
    assert.deepEqual(Object.fromEntries(new URLSearchParams(last.body)), {
      grant_type: 'client_credentials',
      scope: 'all-apis',
    });
    assert.doesNotMatch(last.body, /s3cret/);
  });

  it('reports a wrong secret as a non-retryable API error', async () => {
    const source = oauthM2MSource({ host, clientId: 'app-client-id', clientSecret: 'wrong' });
    await assert.rejects(source.fetchCredential(), (error: PierClientError) => {
      assert.equal(error.kind, 'api');
      assert.equal(error.status, 401);
      assert.equal(error.errorCode, 'invalid_client');
      assert.equal(error.retryable, false);
      return true;
    });
  });

  it('reuses one token for REST calls until shortly before it expires', async () => {
    const api = workspaceApi({ host, clientId: 'app-client-id', clientSecret: 's3cret', source: 'test' });
    const before = tokenRequests.length;
    const [a, b] = await Promise.all([
      api.request('GET', '/api/2.0/preview/scim/v2/Me'),
      api.request('GET', '/api/2.0/preview/scim/v2/Me'),
    ]);
    assert.equal(tokenRequests.length, before + 1);
    assert.equal(a.seenBearer, b.seenBearer);
    assert.match(String(a.seenBearer), /^Bearer m2m-token-\d+$/);
  });

  it('in an app, uses the service principal: user = client id, password = its OAuth token', async () => {
    const pool = createPool({
      env: {
        DATABRICKS_HOST: host,
        DATABRICKS_CLIENT_ID: 'app-client-id',
        DATABRICKS_CLIENT_SECRET: 's3cret',
        PGHOST: '127.0.0.1',
        PGDATABASE: 'databricks_postgres',
        PGSSLMODE: 'require',
      },
    });
    try {
      assert.equal(pool.options.user, 'app-client-id');
      const credential = await pool.credentials.refresh();
      assert.match(credential.token, /^m2m-token-\d+$/);
      assert.equal(await pool.credentials.password(), credential.token);
    } finally {
      await pool.end();
    }
  });
});

function read(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    req.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    req.on('end', () => resolve(text));
  });
}
