// The CLI as the installed `tandem` binary runs it: src/ compiled to JavaScript with the project's build
// config (what `npm run build` writes to dist/), here into a temporary folder so the work tree is untouched.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const repoDir = fileURLToPath(new URL("../..", import.meta.url));

export interface CompiledCli {
  /** The compiled equivalent of src/cli/main.ts. */
  entry: string;
  remove(): void;
}

export function compileCli(): CompiledCli {
  const dir = mkdtempSync(join(tmpdir(), "tandem-bench-build-"));
  const tsc = join(repoDir, "node_modules", "typescript", "bin", "tsc");
  execFileSync(
    process.execPath,
    [tsc, "-p", join(repoDir, "tsconfig.build.json"), "--outDir", dir, "--sourceMap", "false"],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  // Bare imports (pino, ws, …) resolve upwards from the compiled files: give them the project's packages.
  symlinkSync(join(repoDir, "node_modules"), join(dir, "node_modules"), "dir");
  return {
    entry: join(dir, "src", "cli", "main.js"),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
