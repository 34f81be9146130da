// The installed build: src/cli/main.ts and its dependencies bundled and minified into dist/tandem.js, which
// bin/tandem.js imports, plus dist/chunks/ for what sits behind a dynamic import() (the X.509 tooling of
// `tandem init`/`tls`/`dev`): an agent never parses those. One file holding everything cost an idle agent
// more memory than the per-file build (V8 parses the whole script), the split one less (bench/idle.ts).
// Native modules stay external and load from node_modules.
//
//   node scripts/build.ts [--metafile]   (npm run build; npm install runs it through "prepare")
import { rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";

const repoDir = fileURLToPath(new URL("..", import.meta.url));
const outdir = fileURLToPath(new URL("../dist", import.meta.url));
export const BUILD_ENTRY = fileURLToPath(new URL("../dist/tandem.js", import.meta.url));

/**
 * Loaded from node_modules at run time: better-sqlite3 is a native addon that finds its .node file
 * relative to itself; bufferutil and utf-8-validate are ws's optional native helpers (absent is fine);
 * the Pub/Sub client reads its protocol definitions from files beside its own (through __dirname).
 */
const external = ["better-sqlite3", "bufferutil", "utf-8-validate", "@google-cloud/pubsub"];

/** CommonJS dependencies (ws, pino) call require(); an ES module bundle has none of its own. */
const requireShim = 'import{createRequire as __cr}from"node:module";const require=__cr(import.meta.url);';

/**
 * zod ships every language's error messages and loads them all; Tandem's messages are English, zod's
 * default. Only that one is bundled (about a quarter of the bundle, parsed by every agent otherwise).
 */
const zodEnglishOnly: Plugin = {
  name: "zod-english-only",
  setup(build) {
    build.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, (args) => ({
      contents: 'export { default as en } from "./en.js";',
      loader: "js",
      resolveDir: dirname(args.path),
    }));
  },
};

export async function buildBundle(options: { metafile?: boolean } = {}): Promise<void> {
  // Chunk names carry content hashes: old ones would pile up.
  rmSync(join(outdir, "chunks"), { recursive: true, force: true });
  const result = await build({
    absWorkingDir: repoDir,
    entryPoints: { tandem: "src/cli/main.ts" },
    outdir,
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    bundle: true,
    minify: true,
    platform: "node",
    format: "esm",
    target: "node22",
    external,
    banner: { js: requireShim },
    legalComments: "none",
    plugins: [zodEnglishOnly],
    metafile: options.metafile === true,
    logLevel: "warning",
  });
  if (result.metafile) writeFileSync(join(outdir, "meta.json"), JSON.stringify(result.metafile));
}

if (import.meta.main) await buildBundle({ metafile: process.argv.includes("--metafile") });
