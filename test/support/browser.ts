import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { chromium, BrowserContext, Page } from "playwright-core";
import { ROOT, tempDir } from "./orchestrator";

/** Debian's chromium, never a downloaded browser build. */
export const CHROMIUM = "/usr/bin/chromium";
const WEB = path.join(ROOT, "web");
const DIST = path.join(ROOT, "dist", "web");

function newest(dir: string): number {
  let t = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
  }
  return t;
}

/**
 * The gateway serves dist/web (the front-end build of `npm run build`): build it when it is
 * missing or older than web/ (a few seconds), before a node starts. `npm test` does not build.
 */
export function ensureDashboardBuilt(): void {
  const index = path.join(DIST, "index.html");
  if (fs.existsSync(index) && fs.statSync(index).mtimeMs >= newest(WEB)) return;
  process.stdout.write("🔄 building the dashboard (dist/web is older than web/)\n");
  execFileSync(process.execPath, [path.join(path.dirname(require.resolve("vite/package.json")), "bin", "vite.js"), "build", "--config", path.join(WEB, "vite.config.mts")], { cwd: ROOT, stdio: "inherit" });
}

/** One headless Chromium with a fresh profile of its own (one per test file; pages are its tabs, each with its own sessionStorage). */
export async function launchBrowser(): Promise<BrowserContext> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  return chromium.launchPersistentContext(tempDir("blacktree-chromium-"), {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1180, height: 760 },
    // Dates in the screenshots read the same on every machine.
    locale: "en-GB",
    timezoneId: "UTC",
  });
}

/**
 * Where the browser tests write their screenshots: docs/screenshots with
 * UPDATE_SCREENSHOTS=1 (they are the README's), else the run's temp dir (taken all the same,
 * so a page that cannot render fails every run).
 */
export const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === "1" ? path.join(ROOT, "docs", "screenshots") : tempDir("blacktree-screenshots-");

export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  return file;
}
