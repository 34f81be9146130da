// The store bench's workloads, written once against StoreTarget so Tandem and etcd run exactly the same
// thing: closed-loop write throughput (batches, single writes), paced replication lag (ack on node 0 →
// seen by a watch on node 2) and convergence of a paused node after a burst of writes.
import { setTimeout as sleep } from "node:timers/promises";
import { type Distribution, percentile } from "./support/distribution.ts";
import { clockTicksPerSecond, cpuTicks } from "./support/process_usage.ts";

/** What the workloads need from a system under test with three nodes (0 takes writes, 2 is watched). */
export interface StoreTarget {
  /** Writes the entries into node 0 in one request; resolves with how many were acknowledged. */
  writeBatch(entries: readonly KeyValue[]): Promise<number>;
  /** Writes one entry into node 0; resolves true when acknowledged. */
  writeOne(entry: KeyValue): Promise<boolean>;
  /** Watches `prefix` on node 2, calling `seen` for every change as it arrives; resolves once open. */
  watch(prefix: string, seen: (key: string) => void): Promise<() => void>;
  /** The server processes (for their CPU time), node 0 first. */
  pids(): number[];
  /** Stops (SIGSTOP) or resumes (SIGCONT) node 2's process. */
  pauseNode2(paused: boolean): void;
  /**
   * Opened before node 2 is paused: tells whether node 2 now holds exactly what node 0 holds under
   * `prefix`, once `entries` entries were written there; each check should cost node 2 little.
   */
  convergenceProbe(prefix: string, entries: number): Promise<ConvergenceProbe>;
}

export interface ConvergenceProbe {
  node2Identical(): Promise<boolean>;
  close(): void;
}

export interface KeyValue {
  key: string;
  value: Uint8Array;
}

export interface Throughput {
  writes: number;
  seconds: number;
  writesPerSecond: number;
  failedRequests: number;
}

export interface Lag extends Distribution {
  p99: number;
  rateOffered: number;
  /** Writes whose change never reached the watch within the wait. */
  missing: number;
  /** Writes node 2 reported before node 0's ack reached the client (counted as lag 0). */
  seenBeforeAck: number;
}

export interface Convergence {
  entries: number;
  /** From resuming node 2 to the first check that found it identical. */
  identicalAfterMs: number | null;
  /** Time between checks plus one check's duration: the measurement's own resolution. */
  checkIntervalMs: number;
}

/** Cores busy during a workload (1 = one core all the time): what the bench itself competes with. */
export interface CpuShare {
  /** Each server process, node 0 first. */
  serverCores: number[];
  /** This process: the bench client (HTTP or gRPC, JSON, base64). */
  clientCores: number;
}

export async function withCpu<T>(
  pids: readonly number[],
  work: () => Promise<T>,
): Promise<T & { cpu: CpuShare }> {
  const hz = clockTicksPerSecond();
  const ticks = (pid: number) => {
    const t = cpuTicks(pid);
    return t.user + t.system;
  };
  const serversBefore = pids.map(ticks);
  const clientBefore = process.cpuUsage();
  const startedAtMs = performance.now();
  const result = await work();
  const seconds = (performance.now() - startedAtMs) / 1000;
  const client = process.cpuUsage(clientBefore);
  const cpu = {
    serverCores: pids.map((pid, i) => (ticks(pid) - (serversBefore[i] ?? 0)) / hz / seconds),
    clientCores: (client.user + client.system) / 1e6 / seconds,
  };
  return { ...result, cpu };
}

export function patternValue(bytes: number, seed: number): Uint8Array {
  const value = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) value[i] = (seed + i * 31) & 0xff;
  return value;
}

/** `concurrency` workers, each sending its next request when the previous answered, until `durationMs`. */
export async function closedLoop(
  concurrency: number,
  durationMs: number,
  request: (index: number) => Promise<number>,
): Promise<Throughput> {
  let next = 0;
  let writes = 0;
  let failedRequests = 0;
  const startedAtMs = performance.now();
  const deadline = startedAtMs + durationMs;
  const worker = async () => {
    while (performance.now() < deadline) {
      const acked = await request(next++).catch(() => 0);
      if (acked === 0) failedRequests++;
      writes += acked;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - startedAtMs) / 1000;
  return { writes, seconds, writesPerSecond: writes / seconds, failedRequests };
}

/**
 * Open loop at `ratePerS`: every few ms the writes due by then are sent, whatever earlier ones are doing.
 * Lag per write = seen on node 2 − acknowledged by node 0, both read from this process's monotonic clock
 * (0 when node 2 reported it before the ack reached us); the watch and the writer share one event loop, so
 * either timestamp may be late by that loop's delay.
 */
export async function replicationLag(
  target: StoreTarget,
  options: { prefix: string; ratePerS: number; count: number; valueBytes: number; waitMs: number },
): Promise<Lag> {
  const ackedAtMs = new Map<string, number>();
  const seenAtMs = new Map<string, number>();
  const stopWatch = await target.watch(options.prefix, (key) => {
    if (!seenAtMs.has(key)) seenAtMs.set(key, performance.now());
  });
  try {
    const startedAtMs = performance.now();
    const inflight: Array<Promise<void>> = [];
    let sent = 0;
    while (sent < options.count) {
      const due = Math.min(
        options.count,
        Math.floor(((performance.now() - startedAtMs) * options.ratePerS) / 1000),
      );
      for (; sent < due; sent++) {
        const key = `${options.prefix}${sent}`;
        inflight.push(
          target.writeOne({ key, value: patternValue(options.valueBytes, sent) }).then((acked) => {
            if (acked) ackedAtMs.set(key, performance.now());
          }),
        );
      }
      await sleep(2);
    }
    await Promise.all(inflight);
    const deadline = performance.now() + options.waitMs;
    while (seenAtMs.size < ackedAtMs.size && performance.now() < deadline) await sleep(10);
    const signedLags = [...ackedAtMs].flatMap(([key, ackedMs]) => {
      const seenMs = seenAtMs.get(key);
      return seenMs === undefined ? [] : [seenMs - ackedMs];
    });
    const lags = signedLags.map((lag) => Math.max(0, lag));
    const sorted = lags.sort((a, b) => a - b);
    return {
      count: sorted.length,
      min: sorted[0] ?? Number.NaN,
      p50: sorted.length ? percentile(sorted, 50) : Number.NaN,
      p90: sorted.length ? percentile(sorted, 90) : Number.NaN,
      p99: sorted.length ? percentile(sorted, 99) : Number.NaN,
      max: sorted.at(-1) ?? Number.NaN,
      mean: sorted.reduce((sum, v) => sum + v, 0) / sorted.length,
      rateOffered: options.ratePerS,
      missing: ackedAtMs.size - sorted.length,
      seenBeforeAck: signedLags.filter((lag) => lag < 0).length,
    };
  } finally {
    stopWatch();
  }
}

/**
 * Node 2 is paused while `entries` entries are written into node 0 in batches, kept paused `pausedMs` more
 * (long enough for the others to call it down), then resumed; node 2 is checked every `checkIntervalMs`
 * until identical to node 0, for at most `waitMs`.
 */
export async function convergence(
  target: StoreTarget,
  options: {
    prefix: string;
    entries: number;
    batchEntries: number;
    valueBytes: number;
    pausedMs: number;
    checkIntervalMs: number;
    waitMs: number;
  },
): Promise<Convergence> {
  const probe = await target.convergenceProbe(options.prefix, options.entries);
  try {
    return await pausedWrites(target, probe, options);
  } finally {
    probe.close();
  }
}

async function pausedWrites(
  target: StoreTarget,
  probe: ConvergenceProbe,
  options: Parameters<typeof convergence>[1],
): Promise<Convergence> {
  target.pauseNode2(true);
  try {
    for (let first = 0; first < options.entries; first += options.batchEntries) {
      const batch = Array.from(
        { length: Math.min(options.batchEntries, options.entries - first) },
        (_, i) => ({
          key: `${options.prefix}${first + i}`,
          value: patternValue(options.valueBytes, first + i),
        }),
      );
      const acked = await target.writeBatch(batch);
      if (acked !== batch.length)
        throw new Error(`convergence: ${batch.length - acked} writes not acknowledged`);
    }
    await sleep(options.pausedMs);
  } finally {
    target.pauseNode2(false);
  }
  const resumedAtMs = performance.now();
  const deadline = resumedAtMs + options.waitMs;
  while (performance.now() < deadline) {
    if (await probe.node2Identical().catch(() => false)) {
      return {
        entries: options.entries,
        identicalAfterMs: performance.now() - resumedAtMs,
        checkIntervalMs: options.checkIntervalMs,
      };
    }
    await sleep(options.checkIntervalMs);
  }
  return { entries: options.entries, identicalAfterMs: null, checkIntervalMs: options.checkIntervalMs };
}
