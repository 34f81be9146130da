// CPU time and memory of another process, read from Linux /proc (no sampling inside the measured process).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** USER_HZ, the unit of utime/stime in /proc/<pid>/stat (almost always 100). */
export function clockTicksPerSecond(): number {
  const hz = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
  if (!Number.isInteger(hz) || hz <= 0) throw new Error(`getconf CLK_TCK gave ${hz}`);
  return hz;
}

export interface CpuTicks {
  /** utime: running the process's own code (JavaScript, V8, OpenSSL in user space). */
  user: number;
  /** stime: the kernel working for it (system calls such as socket writes, epoll, timers). */
  system: number;
}

/** CPU time the process has used so far, in clock ticks. */
export function cpuTicks(pid: number): CpuTicks {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) is in parentheses and may contain spaces: count fields after its ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of the whole line (utime, stime) are 11 and 12 after the name, zero-based.
  const user = Number(fields[11]);
  const system = Number(fields[12]);
  if (!Number.isFinite(user) || !Number.isFinite(system)) throw new Error(`unreadable /proc/${pid}/stat`);
  return { user, system };
}

export interface MemoryUsage {
  rssKiB: number;
  /** Peak resident set since the process started (includes start-up). */
  rssPeakKiB: number;
}

export function memoryUsage(pid: number): MemoryUsage {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (key: string): number => {
    const match = new RegExp(`^${key}:\\s+(\\d+) kB$`, "m").exec(status);
    if (!match) throw new Error(`no ${key} in /proc/${pid}/status`);
    return Number(match[1]);
  };
  return { rssKiB: kib("VmRSS"), rssPeakKiB: kib("VmHWM") };
}
