// The CLI as operators run it: `npm run build` bundles src/ into dist/tandem.js (scripts/build.ts; the
// installed `tandem` binary runs it). Benches rebuild first, so they never measure a dist/ older than the
// sources.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const repoDir = fileURLToPath(new URL("../..", import.meta.url));

/** Runs the project's build; throws if it fails (a bench must not measure a stale dist/). */
export function buildCli(): void {
  execFileSync(process.execPath, [fileURLToPath(new URL("../../scripts/build.ts", import.meta.url))], {
    cwd: repoDir,
    stdio: ["ignore", "ignore", "inherit"],
  });
}
