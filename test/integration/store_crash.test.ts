// Nothing acknowledged is lost: a child writes into the store and prints each batch after the store returned;
// we kill -9 it at random moments, reopen the database and check that every printed write is there (or
// superseded), values are intact, the digest matches the entries and SQLite finds no corruption.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import { digestOf } from "../../src/core/digest.ts";
import { compareVersions } from "../../src/core/lww.ts";
import { Prng } from "../../src/core/prng.ts";
import type { EntryStamp, Version } from "../../src/core/store_types.ts";
import { SqliteLocalStore } from "../../src/store/sqlite_store.ts";
import { collectLines } from "../support/child_lines.ts";
import {
  type AckedStamp,
  crashNodeId,
  crashValueBytesMax,
  crashValueIsIntact,
} from "../support/store_crash_child.ts";

const childScript = new URL("../support/store_crash_child.ts", import.meta.url).pathname;
const killCount = 15;
const firstAckTimeoutMs = 30_000;
const killDelayMsMax = 400;
/**
 * Every few rounds the child lives longer: through several WAL checkpoint cycles (at most one per 500 ms),
 * SQLite's own checkpoint once the WAL is full and WAL restarts, so kills land in each of them.
 */
const longRoundEvery = 3;
const longKillDelayMsMax = 2_500;
/** Every few rounds the kill may land before the first batch: while Node starts or the store opens. */
const earlyKillEvery = 4;
const childLifetimeMs = 60_000;

const tempDir = mkdtempSync(join(tmpdir(), "tandem-store-crash-"));
const running = new Set<ChildProcess>();
after(() => {
  for (const child of running) if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
  rmSync(tempDir, { recursive: true, force: true });
});

async function waitForFirstAck(lines: readonly string[], child: ChildProcess): Promise<void> {
  const deadline = Date.now() + firstAckTimeoutMs;
  while (!lines.some((l) => l.startsWith("["))) {
    assert.equal(child.exitCode, null, `child exited early:\n${lines.join("\n")}`);
    assert.ok(Date.now() < deadline, `no acknowledged batch within ${firstAckTimeoutMs} ms`);
    await sleep(10);
  }
}

/**
 * Runs the child until a random moment (after its first acknowledged batch, or from its start when
 * `early`, so that some kills land while it opens the database), kills it -9, returns its acks.
 */
async function runAndKill(
  dbPath: string,
  seed: string,
  rng: Prng,
  early: boolean,
  killDelayMsMaxOfRound: number,
): Promise<AckedStamp[][]> {
  const child = spawn(process.execPath, [childScript, dbPath, seed, String(Date.now() + childLifetimeMs)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const lines: string[] = [];
  collectLines(child, lines);
  try {
    if (!early) await waitForFirstAck(lines, child);
    await sleep(rng.intBetween(0, killDelayMsMaxOfRound));
  } finally {
    process.kill(child.pid!, "SIGKILL");
    await exited;
    running.delete(child);
  }
  // collectLines keeps a torn last line in its buffer: only whole lines count as acknowledged.
  return lines.filter((l) => l.startsWith("[")).map((l) => JSON.parse(l) as AckedStamp[]);
}

function integrityOf(dbPath: string): string {
  const raw = new Database(dbPath);
  try {
    return raw.pragma("integrity_check", { simple: true }) as string;
  } finally {
    raw.close();
  }
}

function versionOf(stamp: AckedStamp): Version {
  return { wallMs: stamp[1], counter: stamp[2], nodeId: stamp[3] };
}

/** Every version the parent knows to be durable: acknowledged by the child or seen on disk after a kill. */
type Known = Map<string, EntryStamp>;

function learn(known: Known, stamp: EntryStamp): void {
  const held = known.get(stamp.path);
  if (!held || compareVersions(stamp.version, held.version) > 0) known.set(stamp.path, stamp);
}

/** Checks the reopened store against what is known; returns its lastSeq. */
function checkStore(dbPath: string, known: Known, round: number): number {
  const store = SqliteLocalStore.open({
    path: dbPath,
    nodeId: crashNodeId,
    valueBytesMax: crashValueBytesMax,
  });
  try {
    for (const [path, stamp] of known) {
      const held = store.get(path);
      if (held === null) {
        // Only a collected tombstone may vanish, and it is known: it was on disk after an earlier kill.
        assert.ok(stamp.deleted, `round ${round}: ${path} lost (had ${JSON.stringify(stamp.version)})`);
        continue;
      }
      const order = compareVersions(held.version, stamp.version);
      assert.ok(order >= 0, `round ${round}: ${path} went back to ${JSON.stringify(held.version)}`);
      if (order === 0) assert.equal(held.deleted, stamp.deleted, `round ${round}: ${path} deleted flag`);
      if (held.deleted) assert.equal(held.value.length, 0, `round ${round}: ${path} tombstone with a value`);
      else assert.ok(crashValueIsIntact(path, held.value), `round ${round}: ${path} value torn`);
    }
    const buckets = Array.from({ length: store.bucketCount }, (_, b) => b);
    const stamps = store.stampsInBuckets(buckets);
    assert.deepEqual(store.digest(), digestOf(stamps, store.bucketCount), `round ${round}: digest`);
    for (const stamp of stamps) learn(known, stamp);
    assert.deepEqual(store.changesSince(store.lastSeq(), 1), [], `round ${round}: a change past lastSeq`);
    return store.lastSeq();
  } finally {
    store.close();
  }
}

test("store crash: kill -9 at random moments loses no acknowledged write and corrupts nothing", {
  timeout: 300_000,
}, async (t) => {
  const seed = process.env.STORE_CRASH_SEED ?? randomBytes(4).toString("hex");
  t.diagnostic(`seed=${seed} (rerun with STORE_CRASH_SEED=${seed})`);
  const rng = new Prng(seed);
  const dbPath = join(tempDir, "store.db");
  const known: Known = new Map();
  let lastLocal: Version | undefined;
  let ackedTotal = 0;
  let lastSeq = 0;
  for (let round = 0; round < killCount; round++) {
    const early = round % earlyKillEvery === 0;
    const delayMax = round % longRoundEvery === 1 ? longKillDelayMsMax : killDelayMsMax;
    const batches = await runAndKill(dbPath, `${seed}/${round}`, rng, early, delayMax);
    for (const stamp of batches.flat()) {
      const version = versionOf(stamp);
      learn(known, { path: stamp[0], version, deleted: stamp[4] });
      if (version.nodeId !== crashNodeId) continue;
      // The persisted clock: local versions only ever increase, across crashes too.
      if (lastLocal)
        assert.equal(compareVersions(version, lastLocal), 1, `round ${round}: local version went back`);
      lastLocal = version;
    }
    ackedTotal += batches.flat().length;
    assert.equal(integrityOf(dbPath), "ok", `round ${round}: integrity_check`);
    const seq = checkStore(dbPath, known, round);
    assert.ok(seq >= lastSeq, `round ${round}: lastSeq went back from ${lastSeq} to ${seq}`);
    lastSeq = seq;
  }
  t.diagnostic(`${ackedTotal} acknowledged changes across ${killCount} kills, ${known.size} paths`);
  assert.ok(ackedTotal > killCount, "the child acknowledged writes in every run");
});
