import fs from "node:fs";
import path from "node:path";
import type { ServerResponse } from "node:http";

/**
 * The dashboard's static files: `dist/web` of the package (built by `npm run build`, the
 * front-end toolchain is never needed at run time). Found from this file's place both in
 * the sources (lib/gateway) and in the build (dist/lib/gateway).
 */
export function dashboardDir(from = __dirname): string | null {
  let dir = from;
  for (let i = 0; i < 6; i++) {
    const manifest = path.join(dir, "package.json");
    if (fs.existsSync(manifest) && readName(manifest) === "blacktree-orchestrator") {
      const web = path.join(dir, "dist", "web");
      return fs.existsSync(path.join(web, "index.html")) ? web : null;
    }
    dir = path.dirname(dir);
  }
  return null;
}

function readName(manifest: string): string | null {
  try {
    return (JSON.parse(fs.readFileSync(manifest, "utf8")) as { name?: string }).name ?? null;
  } catch {
    return null;
  }
}

/**
 * Headers of every dashboard file: scripts and connections to this origin only (no CDN,
 * no third party), never framed, and no Referer (a stream URL carries a short-lived token).
 * `index.html` is revalidated each time; the hashed assets never change.
 */
export function setDashboardHeaders(res: ServerResponse, file: string): void {
  res.setHeader("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
  res.setHeader("X-Content-Type-Options", "nosniff");
  res.setHeader("Referrer-Policy", "no-referrer");
  res.setHeader("Cache-Control", file.includes(`${path.sep}assets${path.sep}`) ? "public, max-age=31536000, immutable" : "no-cache");
}
