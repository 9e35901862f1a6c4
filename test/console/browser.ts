import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

/** Where screenshots go (git-ignored). */
export const RESULTS_DIR = new URL('../../../test-results/', import.meta.url);

/** Debian's Chromium, headless: `.ci/run` installs it. */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.PIER_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  });
}

export async function newConsoleContext(browser: Browser, origin: string): Promise<BrowserContext> {
  // bypassCSP lets axe-core be injected: the console's own policy allows no inline script.
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  return context;
}

const require = createRequire(import.meta.url);
let axeSource: Promise<string> | undefined;

/** axe-core's violations of impact serious or critical on the page as it is now. */
export async function seriousViolations(page: Page): Promise<string[]> {
  axeSource ??= readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ content: await axeSource });
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(): Promise<{ violations: Violation[] }> } }).axe;
    interface Violation {
      id: string;
      impact: string;
      help: string;
      nodes: { target: string[] }[];
    }
    return (await axe.run()).violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((n) => n.target.join(' ')),
    }));
  });
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.targets.slice(0, 3).join(', ')}`);
}

/**
 * Screenshots of the page at desktop (1280 px, light and dark) and phone
 * (390 px) width, and axe's serious violations in each; the viewport is
 * left at 1280 px, light.
 */
export async function capturePage(page: Page, name: string): Promise<string[]> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const problems: string[] = [];
  // The dark theme follows the system: checked (contrast included) at desktop width.
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({
    path: new URL(`console-${name}-1280-dark.png`, RESULTS_DIR).pathname,
    fullPage: true,
  });
  problems.push(...(await seriousViolations(page)).map((v) => `${name} in the dark theme: ${v}`));
  await page.emulateMedia({ colorScheme: 'light' });
  for (const width of [390, 1280]) {
    await page.setViewportSize({ width, height: width === 390 ? 844 : 900 });
    await page.waitForTimeout(150); // charts resize on the next frame
    await page.screenshot({
      path: new URL(`console-${name}-${width}.png`, RESULTS_DIR).pathname,
      fullPage: true,
    });
    problems.push(...(await seriousViolations(page)).map((v) => `${name} at ${width}px: ${v}`));
    // Usable at phone width: nothing but a table's own scroll box may be wider than the screen.
    const overflow = await page.evaluate(() => {
      const by = document.documentElement.scrollWidth - window.innerWidth;
      const wide = [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.scroll'))
        .slice(-3)
        .map((e) => `${e.tagName.toLowerCase()}.${[...e.classList].join('.')}`);
      return { by, wide };
    });
    if (overflow.by > 1) {
      problems.push(
        `${name} at ${width}px: the page is ${overflow.by}px wider than the screen (${overflow.wide.join(', ')})`,
      );
    }
  }
  return problems;
}
