// The real `tandem` CLI in a child process, bounded in time, for tests that drive it as an operator would.
import { execFile } from "node:child_process";
import { CLI_ENTRY } from "./cluster_harness.ts";

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** `env` adds to (or, undefined, removes from) this process's environment; TANDEM_TOKEN is never inherited. */
export function runTandem(
  args: string[],
  env: Record<string, string | undefined> = {},
  timeoutMs = 20_000,
): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI_ENTRY.source, ...args],
      { env: { ...process.env, TANDEM_TOKEN: undefined, ...env }, timeout: timeoutMs },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
