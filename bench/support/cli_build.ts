// The CLI as operators run it: `npm run build` compiles src/ into dist/ (the installed `tandem` binary runs
// dist/src/cli/main.js). Benches rebuild first, so they never measure a dist/ older than the sources.
import { execFileSync } from "node:child_process";
import { statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CLI_ENTRY } from "../../test/support/cluster_harness.ts";

const repoDir = fileURLToPath(new URL("../..", import.meta.url));

/** Runs the project's build; type errors (e.g. in files being edited) do not stop tsc from emitting. */
export function buildCli(): void {
  const startedAtMs = Date.now();
  try {
    execFileSync(
      process.execPath,
      [
        fileURLToPath(new URL("../../node_modules/typescript/bin/tsc", import.meta.url)),
        "-p",
        "tsconfig.build.json",
      ],
      { cwd: repoDir, stdio: ["ignore", "ignore", "inherit"] },
    );
  } catch {
    // Checked below: what matters is a freshly emitted entry point.
  }
  const entryWrittenAtMs = statSync(CLI_ENTRY.build, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  // mtime has coarser resolution than Date.now() on some filesystems: allow a second.
  if (entryWrittenAtMs < startedAtMs - 1_000)
    throw new Error(`tsc -p tsconfig.build.json did not write ${CLI_ENTRY.build}`);
}
