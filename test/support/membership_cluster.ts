// What the membership tests read and drive on a ClusterHarness: statuses with their membership section,
// the members API, the `tandem member` CLI, and a writer that keeps the store busy and remembers what was
// acknowledged.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import type { MembersJson } from "../../src/api/index.ts";
import type { ClusterStatus } from "../../src/cluster/index.ts";
import { type CliRun, runTandem } from "./cli_run.ts";
import type { ClusterHarness, NodeStatus } from "./cluster_harness.ts";
import type { StatusRound } from "./leadership_record.ts";

export type MemberNodeStatus = NodeStatus & Pick<ClusterStatus, "membership">;

/** Bounds a broken build; a loaded machine may take long to get there. */
export const waitTimeoutMs = 30_000;
/** A change waits for the leader's hand-off, a forward and a quorum (the CLI allows 45 s): more than that. */
const memberCommandTimeoutMs = 60_000;
const requestTimeoutMs = 5_000;

export async function memberStatus(harness: ClusterHarness, id: string): Promise<MemberNodeStatus | null> {
  return (await harness.status(id)) as MemberNodeStatus | null;
}

/** One round of statuses of the given nodes, read at once; nodes that did not answer are left out. */
export async function statusRound(harness: ClusterHarness, ids: readonly string[]): Promise<StatusRound> {
  const answers = await Promise.all(ids.map(async (id) => [id, await harness.status(id)] as const));
  return new Map(answers.filter((a): a is readonly [string, NodeStatus] => a[1] !== null));
}

/** GET /api/v1/members on one node, or null if it did not answer. */
export async function members(harness: ClusterHarness, id: string): Promise<MembersJson | null> {
  try {
    const response = await fetch(`${harness.node(id).apiUrl}/api/v1/members`, {
      signal: AbortSignal.timeout(requestTimeoutMs),
    });
    return response.ok ? ((await response.json()) as MembersJson) : null;
  } catch {
    return null;
  }
}

/** Polls one node's members list until `check` returns a value, or fails with the last list and the logs. */
export async function waitForMembers<T>(
  harness: ClusterHarness,
  id: string,
  what: string,
  check: (doc: MembersJson) => T | undefined,
): Promise<T> {
  const deadline = Date.now() + waitTimeoutMs;
  let last: MembersJson | null = null;
  while (Date.now() < deadline) {
    last = await members(harness, id);
    const result = last === null ? undefined : check(last);
    if (result !== undefined) return result;
    await sleep(100);
  }
  assert.fail(`timed out waiting for ${what}; ${id} lists ${JSON.stringify(last)}\n${harness.dumpLogs()}`);
}

/** `tandem member ARGS --config <node's config>`: an operator on that node, through the real CLI. */
export async function memberCommand(harness: ClusterHarness, on: string, args: string[]): Promise<CliRun> {
  return runTandem(["member", ...args, "--config", harness.node(on).configPath], {}, memberCommandTimeoutMs);
}

export function describeRun(run: CliRun): string {
  return `exit ${run.code}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`;
}

export interface AckedWrite {
  path: string;
  value: string;
}

/**
 * Writes unique keys through the API of the given nodes in turn, one at a time, until stopped; keeps the
 * writes acknowledged (200, acked) by min_acks=1 peers. Unique keys make "held" exact: one value per path.
 */
export class StoreWriter {
  readonly acked: AckedWrite[] = [];
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(harness: ClusterHarness, through: readonly string[], prefix: string) {
    this.loop = (async () => {
      for (let i = 0; !this.stopped; i++) {
        const path = `${prefix}/w${i}`;
        const value = `v${i}`;
        const node = harness.node(through[i % through.length]!);
        // The timeout also covers reading the body; a write not answered in time is not counted.
        const body = await fetch(`${node.apiUrl}/api/v1/store/${path}?min_acks=1`, {
          method: "PUT",
          body: value,
          signal: AbortSignal.timeout(waitTimeoutMs),
        })
          .then((response) =>
            response.status === 200 ? (response.json() as Promise<{ acked?: boolean }>) : null,
          )
          .catch(() => null);
        if (body?.acked === true) this.acked.push({ path, value });
        else await sleep(20);
      }
    })();
  }

  /** Waits until `count` writes in all were acknowledged; `phase` names the moment in the failure. */
  async ackedAtLeast(count: number, phase: string): Promise<void> {
    const deadline = Date.now() + waitTimeoutMs;
    while (this.acked.length < count) {
      assert.ok(Date.now() < deadline, `${phase}: ${this.acked.length} of ${count} writes acknowledged`);
      await sleep(20);
    }
  }

  /** Waits for `more` acknowledgements after the ones held now. */
  async ackedMore(more: number, phase: string): Promise<void> {
    await this.ackedAtLeast(this.acked.length + more, phase);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

interface HeldPage {
  entries: Array<{ path: string; value: string }>;
  next: string | null;
}

/** Entries per listing page: values of 64 KiB make a page of 1,000 about 85 MB of JSON. */
const heldPageMax = 200;

/** Every live entry under `prefix` one node holds, read through its listing API, or null if it did not answer. */
async function heldValues(
  harness: ClusterHarness,
  id: string,
  prefix: string,
): Promise<Map<string, string> | null> {
  const held = new Map<string, string>();
  let after = "";
  for (;;) {
    const from = after === "" ? "" : `&after=${encodeURIComponent(after)}`;
    const query = `prefix=${encodeURIComponent(`${prefix}/`)}&values=1&limit=${heldPageMax}${from}`;
    // The timeout also covers reading the body: a slow page counts as no answer, and the wait asks again.
    const page = await fetch(`${harness.node(id).apiUrl}/api/v1/store?${query}`, {
      signal: AbortSignal.timeout(requestTimeoutMs),
    })
      .then((response) => (response.ok ? (response.json() as Promise<HeldPage>) : null))
      .catch(() => null);
    if (page === null) return null;
    for (const entry of page.entries) held.set(entry.path, Buffer.from(entry.value, "base64").toString());
    if (page.next === null) return held;
    after = page.next;
  }
}

/** Waits until `id` holds every write (each path with its value), or fails naming what is missing. */
export async function waitUntilHeld(
  harness: ClusterHarness,
  id: string,
  prefix: string,
  writes: readonly AckedWrite[],
): Promise<void> {
  const deadline = Date.now() + waitTimeoutMs;
  let missing: AckedWrite[] = [...writes];
  while (Date.now() < deadline) {
    const held = await heldValues(harness, id, prefix);
    if (held !== null) missing = writes.filter((w) => held.get(w.path) !== w.value);
    if (held !== null && missing.length === 0) return;
    await sleep(200);
  }
  const sample = missing.slice(0, 5).map((w) => w.path);
  assert.fail(
    `${id} lacks ${missing.length} of ${writes.length} acknowledged writes (${sample.join(", ")})\n${harness.dumpLogs()}`,
  );
}
