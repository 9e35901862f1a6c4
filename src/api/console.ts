import { readFile } from 'node:fs/promises';
import type { Context, Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { ControlContext } from '../control/context.js';
import { PierError } from '../errors.js';
import { failureCounts } from '../failures.js';
import { authenticateCaller } from '../identities/oauth-tokens.js';
import type { IdentityRow } from '../identities/store.js';
import { renderFamilies } from '../metrics/registry.js';
import { latestMetricSamples } from '../metrics/store.js';
import { instanceFamilies, nodeFamilies, processFamilies } from '../metrics/view.js';
import { listJudgedNodes } from '../nodes/service.js';
import { nodeLoads } from '../nodes/store.js';
import {
  authenticateSession,
  CSRF_HEADER,
  findLiveSession,
  SESSION_COOKIE,
  signIn,
  signOut,
} from '../sessions/service.js';
import { type ApiEnv, readJson, requireAdmin } from './request.js';

/** Where `npm install` writes the console's bundle (esbuild, see scripts/build-console.mjs). */
const BUNDLE_DIR = new URL('../../console/', import.meta.url);

/** The console's files, under a prefix no API route uses. */
const CONSOLE_ASSETS = '/console/assets';

const CONTENT_TYPES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'main.js': 'text/javascript; charset=utf-8',
  'main.css': 'text/css; charset=utf-8',
};

/** Everything the page loads comes from here: no CDN, no inline script, no framing. */
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/**
 * The identity of an API call: a bearer token (every Databricks client), or
 * else the console's session cookie (with the CSRF check of
 * sessions/service.ts for state-changing methods).
 */
export async function authenticateRequest(ctx: ControlContext, c: Context<ApiEnv>): Promise<IdentityRow> {
  const authorization = c.req.header('authorization');
  const sessionId = getCookie(c, SESSION_COOKIE);
  if (authorization || !sessionId) return authenticateCaller(ctx, authorization);
  refuseCrossOrigin(c);
  return authenticateSession(ctx.store, sessionId, {
    method: c.req.method,
    csrfHeader: c.req.header(CSRF_HEADER),
  });
}

/** A browser's Origin, when it sends one, must be this server's own. */
function refuseCrossOrigin(c: Context<ApiEnv>): void {
  const origin = c.req.header('origin');
  if (origin && origin !== new URL(c.req.url).origin) {
    throw new PierError('PERMISSION_DENIED', `Requests from ${origin} may not use the console's session.`);
  }
}

/** What the console shows as connection details: the proxy's port and, when Pier made its own CA, its path. */
export interface ConnectionFacts {
  proxyPort: number;
  caCertPath?: string;
}

function sessionView(
  session: { identity: IdentityRow; csrf_token: string; expires_at: Date },
  facts: ConnectionFacts,
) {
  return {
    user_name: session.identity.user_name,
    display_name: session.identity.display_name ?? session.identity.user_name,
    is_admin: session.identity.is_admin,
    csrf_token: session.csrf_token,
    expires_at: session.expires_at.toISOString(),
    connection: {
      proxy_port: facts.proxyPort,
      ...(facts.caCertPath ? { ca_cert_path: facts.caCertPath } : {}),
      database: 'databricks_postgres',
    },
  };
}

/**
 * The console: its page at `/` (and every console path below it, which the
 * page routes itself), its files under /console/assets, the session routes
 * (sign-in with a personal access token, the current session, sign-out) and
 * `/metrics` for Prometheus.
 */
export function mountConsole(app: Hono<ApiEnv>, ctx: ControlContext, facts: ConnectionFacts): void {
  const files = new Map<string, Promise<Buffer | undefined>>();
  const file = (name: string) => {
    let body = files.get(name);
    if (!body) {
      body = readFile(new URL(name, BUNDLE_DIR)).catch(() => undefined);
      files.set(name, body);
    }
    return body;
  };
  const serve = async (c: Context<ApiEnv>, name: string) => {
    const body = CONTENT_TYPES[name] ? await file(name) : undefined;
    if (!body) {
      if (name !== 'index.html') return c.text('Not found.', 404);
      return c.text(
        'The console is not built: run `npm install` (or `npm run build:console`) in the Pier checkout.',
        503,
      );
    }
    c.header('Content-Type', CONTENT_TYPES[name]);
    c.header('Cache-Control', 'no-cache');
    c.header('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    return c.body(new Uint8Array(body));
  };

  app.get('/', (c) => serve(c, 'index.html'));
  app.get(`${CONSOLE_ASSETS}/:file`, (c) => serve(c, c.req.param('file')));

  app.post('/console/session', async (c) => {
    refuseCrossOrigin(c);
    // A JSON body cannot be sent across origins without a preflight this server never grants.
    if (!c.req.header('content-type')?.startsWith('application/json')) {
      throw new PierError('MALFORMED_REQUEST', 'Sign in with a JSON body: {"token": "dapi…"}.');
    }
    const body = (await readJson(c)) as { token?: unknown };
    const session = await signIn(ctx.store, body?.token);
    setCookie(c, SESSION_COOKIE, session.sessionId, {
      httpOnly: true,
      sameSite: 'Strict',
      secure: new URL(c.req.url).protocol === 'https:',
      path: '/',
      expires: session.expiresAt,
    });
    return c.json(
      sessionView(
        {
          identity: session.identity,
          csrf_token: session.csrfToken,
          expires_at: session.expiresAt,
        },
        facts,
      ),
    );
  });
  app.get('/console/session', async (c) => {
    const session = await findLiveSession(ctx.store, getCookie(c, SESSION_COOKIE));
    if (!session) throw new PierError('UNAUTHENTICATED', 'Not signed in.');
    return c.json(sessionView(session, facts));
  });
  app.delete('/console/session', async (c) => {
    const sessionId = getCookie(c, SESSION_COOKIE);
    if (sessionId) {
      refuseCrossOrigin(c);
      await authenticateSession(ctx.store, sessionId, {
        method: 'DELETE',
        csrfHeader: c.req.header(CSRF_HEADER),
      });
      await signOut(ctx.store, sessionId);
    }
    deleteCookie(c, SESSION_COOKIE, { path: '/' });
    return c.json({});
  });

  app.get('/metrics', async (c) => {
    requireAdmin(await authenticateRequest(ctx, c), 'read /metrics');
    const [nodes, loads] = await Promise.all([listJudgedNodes(ctx), nodeLoads(ctx.store)]);
    const text = renderFamilies([
      ...instanceFamilies(await latestMetricSamples(ctx.store)),
      ...nodeFamilies(
        nodes.map((node) => ({ ...node, ...(loads.get(node.node_id) ?? { instances: 0, pipelines: 0 }) })),
      ),
      ...processFamilies(failureCounts()),
    ]);
    return c.body(text, 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
  });
}
