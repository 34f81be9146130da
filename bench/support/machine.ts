// The machine a bench ran on, recorded with every result so a figure is never quoted without it.
import { cpus, loadavg, platform, release, totalmem } from "node:os";

export interface Machine {
  cpu: string;
  cores: number;
  memoryMiB: number;
  platform: string;
  kernel: string;
  node: string;
  /** 1-minute load average when described: other work on the machine skews timings and CPU figures. */
  loadAverage1m: number;
}

export function describeMachine(): Machine {
  const cpu = cpus();
  return {
    cpu: cpu[0]?.model.trim() ?? "unknown",
    cores: cpu.length,
    memoryMiB: Math.round(totalmem() / 2 ** 20),
    platform: platform(),
    kernel: release(),
    node: process.version,
    loadAverage1m: loadavg()[0] ?? 0,
  };
}

/** `AMD EPYC, 2 cores, 23.5 GiB, linux 6.18.44, Node v24.21.0, load 0.12` */
export function formatMachine(machine: Machine): string {
  const memoryGiB = (machine.memoryMiB / 1024).toFixed(1);
  return (
    `${machine.cpu}, ${machine.cores} cores, ${memoryGiB} GiB, ${machine.platform} ${machine.kernel}, ` +
    `Node ${machine.node}, load ${machine.loadAverage1m.toFixed(2)}`
  );
}
