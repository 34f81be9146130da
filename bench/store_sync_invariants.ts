// What the store sync core's invariant checks (src/core/store_sync_invariants.ts) cost per input: a cluster
// of real cores in one process pushes single-entry writes (apply to every peer, persisted at once,
// apply-ack back), once with the checks and once with them patched out; the rounds alternate, and the
// best (least disturbed) and median rounds of each are reported. The stores are left out (a stub view, persists only reported), so the figures are
// the core's own CPU time. Prints a table and writes bench/results/store_sync_invariants.json.
//
//   node bench/store_sync_invariants.ts [--writes 20000] [--rounds 7] [--nodes 3,9,50]
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, platform, release } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { StoreSync } from "../src/core/store_sync.ts";
import { DEFAULT_STORE_SYNC_LIMITS } from "../src/core/store_sync_config.ts";
import type { Envelope, StoreEntry, StoreSyncMessage, StoreView } from "../src/core/store_sync_types.ts";
import type { NodeId } from "../src/core/types.ts";

const wallMs = 1_700_000_000_000;

/** The write path reads only the identity; anything else is a mistake of this bench. */
function stubView(): StoreView {
  const unused = () => {
    throw new Error("not on the write path");
  };
  return {
    identity: () => ({ storeId: 7, createdWallMs: wallMs }),
    syncCursors: () => [],
    digest: unused,
    stampsInBuckets: unused,
    stampsSince: unused,
    stampsAt: unused,
    getMany: unused,
    lastSeq: unused,
  };
}

function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Runs `writes` writes on n1 through a fresh cluster; returns elapsed ms and the core inputs fed. */
function runCluster(size: number, writes: number, checks: boolean): { ms: number; inputs: number } {
  const ids: NodeId[] = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const nodes = new Map<NodeId, StoreSync>();
  for (const id of ids) {
    const config = {
      selfId: id,
      peers: ids.filter((p) => p !== id),
      writeTimeoutTicks: 100,
      antiEntropyIntervalTicks: 1_000_000,
      roundTimeoutTicks: 100,
      digestRoundEvery: 4,
      limits: DEFAULT_STORE_SYNC_LIMITS,
    };
    const core = new StoreSync(config, stubView());
    if (!checks) {
      // The checks patched out: what the core costs without them.
      const bare = core as unknown as { beginInput(): void; assertInvariants(): void };
      bare.beginInput = () => {};
      bare.assertInvariants = () => {};
    }
    nodes.set(id, core);
  }
  let inputs = 0;
  const queue: Envelope<StoreSyncMessage>[] = [];
  const drain = (core: StoreSync) => {
    while (core.hasReady()) {
      const ready = core.ready();
      queue.push(...ready.messages);
      core.advance(ready);
      for (const request of ready.persist) {
        core.persisted(request.token);
        inputs++;
      }
    }
  };
  const writer = nodes.get("n1")!;
  const value = new Uint8Array(64);
  const started = cpuMs();
  for (let i = 0; i < writes; i++) {
    const version = { wallMs, counter: i, nodeId: "n1" };
    const entries: StoreEntry[] = [{ path: `k/${i % 1000}`, value, version, deleted: false }];
    writer.localCommitted(`w${i}`, entries, 1, undefined, i + 1);
    inputs++;
    drain(writer);
    for (let next = 0; next < queue.length; next++) {
      const { from, to, message } = queue[next]!;
      const core = nodes.get(to)!;
      core.step(from, message);
      inputs++;
      drain(core);
    }
    queue.length = 0;
  }
  return { ms: cpuMs() - started, inputs };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const { values } = parseArgs({
  options: {
    writes: { type: "string", default: "20000" },
    rounds: { type: "string", default: "7" },
    nodes: { type: "string", default: "3,9,50" },
  },
});
const writes = Number(values.writes);
const rounds = Number(values.rounds);
const sizes = values.nodes.split(",").map(Number);

const rows = sizes.map((size) => {
  const scaled = Math.max(1000, Math.round((writes * 3) / size));
  runCluster(size, scaled, true); // warm-up
  runCluster(size, scaled, false);
  const on: number[] = [];
  const off: number[] = [];
  let inputs = 0;
  for (let r = 0; r < rounds; r++) {
    const a = runCluster(size, scaled, true);
    const b = runCluster(size, scaled, false);
    on.push((a.ms * 1e6) / a.inputs);
    off.push((b.ms * 1e6) / b.inputs);
    inputs = a.inputs;
  }
  const onNs = Math.min(...on);
  const offNs = Math.min(...off);
  return {
    nodes: size,
    writes: scaled,
    inputsPerWrite: inputs / scaled,
    nsPerInputChecked: Math.round(onNs),
    nsPerInputUnchecked: Math.round(offNs),
    checkNsPerInput: Math.round(onNs - offNs),
    checkUsPerWrite: Number((((onNs - offNs) * inputs) / scaled / 1000).toFixed(2)),
    checkNsPerInputMedian: Math.round(median(on) - median(off)),
  };
});

console.log(`store sync core: cost of the invariant checks (CPU time, best of ${rounds} alternating rounds)`);
console.log(
  "nodes  writes  inputs/write  ns/input checked  unchecked  checks ns/input  checks µs/write  (median ns/input)",
);
for (const r of rows) {
  console.log(
    `${String(r.nodes).padStart(5)}  ${String(r.writes).padStart(6)}  ${r.inputsPerWrite.toFixed(1).padStart(12)}  ` +
      `${String(r.nsPerInputChecked).padStart(16)}  ${String(r.nsPerInputUnchecked).padStart(9)}  ` +
      `${String(r.checkNsPerInput).padStart(15)}  ${String(r.checkUsPerWrite).padStart(15)}  ` +
      `${String(r.checkNsPerInputMedian).padStart(17)}`,
  );
}
const out = join(dirname(fileURLToPath(import.meta.url)), "results", "store_sync_invariants.json");
mkdirSync(dirname(out), { recursive: true });
const machine = { cpu: cpus()[0]?.model, cores: cpus().length, platform: platform(), release: release() };
writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), machine, rounds, rows }, null, 2)}\n`);
