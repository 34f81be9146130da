// The machine a bench ran on, recorded with every result so a figure is never quoted without it.
import { cpus, platform, release, totalmem } from "node:os";

export interface Machine {
  cpu: string;
  cores: number;
  memoryMiB: number;
  platform: string;
  kernel: string;
  node: string;
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
  };
}

/** `AMD EPYC, 2 cores, 23.5 GiB, linux 6.18.44, Node v24.21.0` */
export function formatMachine(machine: Machine): string {
  const memoryGiB = (machine.memoryMiB / 1024).toFixed(1);
  return `${machine.cpu}, ${machine.cores} cores, ${memoryGiB} GiB, ${machine.platform} ${machine.kernel}, Node ${machine.node}`;
}
