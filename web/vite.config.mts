import path from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = path.dirname(fileURLToPath(import.meta.url));

/** The dashboard: built into dist/web, which the gateway serves at `/`. Everything is bundled (no CDN). */
export default defineConfig({
  root: here,
  base: "./",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: path.resolve(here, "../dist/web"),
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 300,
  },
  logLevel: "warn",
});
