// Stopping the daemons a bench started: SIGTERM to each by pid, and whatever has not exited by the
// deadline is killed with `forceKill` (a pid, or a process group for a daemon that forks).
import type { ChildProcess } from "node:child_process";

export async function stopChildren(
  children: readonly ChildProcess[],
  timeoutMs: number,
  forceKill: (pid: number) => void,
): Promise<void> {
  const exits = children.map((child) => new Promise<void>((resolve) => child.once("exit", () => resolve())));
  for (const child of children) if (child.pid !== undefined) process.kill(child.pid, "SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    Promise.all(exits).then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (!timedOut) return;
  for (const child of children) if (child.pid !== undefined) forceKill(child.pid);
}
