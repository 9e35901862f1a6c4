/**
 * `npm run bench:console`: what the console's short polling costs Pier.
 * The instance list is fetched with the session cookie, as the page does,
 * with 1 and 10 instances (the default --max-instances); the numbers decide polling against server-sent
 * events (docs/console.md, "Live state").
 */
import { api, removePier, startPier } from '../test/helpers/pier.js';

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const pier = await startPier();
try {
  const signIn = await fetch(`${pier.apiUrl}/console/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: pier.adminToken }),
  });
  const cookie = (signIn.headers.get('set-cookie') ?? '').split(';')[0];
  const lines: string[] = [];
  let made = 0;
  for (const count of [1, 10]) {
    for (; made < count; made++) {
      const created = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances', {
        name: `poll-${made}`,
        capacity: 'CU_1',
        stopped: true,
      });
      if (created.status !== 200) throw new Error(JSON.stringify(created.body));
    }
    const times: number[] = [];
    let bytes = 0;
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      const response = await fetch(`${pier.apiUrl}/api/2.0/database/instances?page_size=100`, {
        headers: { cookie },
      });
      bytes = (await response.arrayBuffer()).byteLength;
      times.push(performance.now() - t0);
    }
    lines.push(
      `| ${count} | ${percentile(times, 50).toFixed(1)} ms | ${percentile(times, 95).toFixed(1)} ms | ${bytes} B | ${((bytes * 720) / 1024).toFixed(0)} kB |`,
    );
  }
  console.log('| instances | p50 | p95 | response | per idle tab and hour (every 5 s) |');
  console.log('|---|---|---|---|---|');
  for (const line of lines) console.log(line);
} finally {
  await removePier(pier);
}
