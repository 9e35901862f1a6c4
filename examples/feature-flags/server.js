// @ts-check
/**
 * Feature flags: a server-rendered page that lists the rows of
 * flags.feature_flags and toggles them. Everything it needs comes from the
 * environment Databricks Apps (and `pier apps run`) inject: createPool()
 * reads PGHOST, PGUSER, DATABRICKS_CLIENT_ID/SECRET, … and keeps the
 * service principal's token fresh.
 */
import { createServer } from 'node:http';
import { createPool } from 'pier/client';
import { migrate } from './migrations.js';

const pool = createPool();
pool.on('credentialError', ({ error, retryInMs }) =>
  console.warn(`database credential refresh failed (${error.message}); retrying in ${retryInMs} ms`),
);
await migrate(pool);

const title = process.env.FLAGS_TITLE ?? 'Feature flags';

/** @param {string} text */
const escape = (text) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

/** @param {{ name: string; enabled: boolean; description: string; updated_at: Date }[]} flags */
function page(flags) {
  const rows = flags
    .map(
      (flag) => `
      <tr data-flag="${escape(flag.name)}">
        <td><code>${escape(flag.name)}</code></td>
        <td>${escape(flag.description)}</td>
        <td class="state">${flag.enabled ? 'on' : 'off'}</td>
        <td>
          <form method="post" action="/flags/${encodeURIComponent(flag.name)}/toggle">
            <button type="submit">${flag.enabled ? 'Turn off' : 'Turn on'}</button>
          </form>
        </td>
      </tr>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}td{padding:.3rem 1rem}.state{font-weight:bold}</style></head>
<body>
  <h1>${escape(title)}</h1>
  <table><thead><tr><th>Flag</th><th>What</th><th>Active</th><th></th></tr></thead><tbody>${rows}</tbody></table>
  <p><small>App ${escape(process.env.DATABRICKS_APP_NAME ?? '')}, database ${escape(process.env.PGDATABASE ?? '')} as ${escape(process.env.PGUSER ?? '')}</small></p>
</body>
</html>`;
}

const server = createServer(async (req, res) => {
  try {
    const url = new URL(req.url ?? '/', 'http://app');
    const toggle = /^\/flags\/([^/]+)\/toggle$/.exec(url.pathname);
    if (req.method === 'POST' && toggle) {
      await pool.query('UPDATE flags.feature_flags SET enabled = NOT enabled, updated_at = now() WHERE name = $1', [
        decodeURIComponent(toggle[1]),
      ]);
      res.writeHead(303, { location: '/' }).end(); // back to the list: a reload shows what is stored
      return;
    }
    if (req.method === 'GET' && url.pathname === '/') {
      const { rows } = await pool.query('SELECT name, enabled, description, updated_at FROM flags.feature_flags ORDER BY name');
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page(rows));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found\n');
  } catch (error) {
    console.error(error);
    res.writeHead(500, { 'content-type': 'text/plain' }).end('The database did not answer; see the app log.\n');
  }
});

const port = Number(process.env.DATABRICKS_APP_PORT ?? 8000);
server.listen(port, () => console.log(`feature-flags listening on ${port}`));
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    void pool.end().finally(() => process.exit(0));
  });
}
