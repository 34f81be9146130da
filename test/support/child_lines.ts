// Collects a child process's stdout and stderr as whole lines (agents log one JSON event per line).
import type { ChildProcess } from "node:child_process";

export function collectLines(child: ChildProcess, lines: string[]): void {
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding("utf8");
    let buffered = "";
    stream?.on("data", (chunk: string) => {
      buffered += chunk;
      const parts = buffered.split("\n");
      buffered = parts.pop() ?? "";
      lines.push(...parts.filter((l) => l.length > 0));
    });
  }
}
