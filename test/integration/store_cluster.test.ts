// The store across real agents (processes, CLI, config files): a write on one node is readable and
// materialised on the others; a node killed -9 during writes and restarted converges; a write that cannot
// reach min_acks says so and still spreads later.
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ClusterHarness } from "../support/cluster_harness.ts";

const ids = ["n1", "n2", "n3"];
/** Bounds a broken build; a loaded machine may take long to get there. */
const waitTimeoutMs = 30_000;
/** How long a write waits for its acknowledgements: ample for a loaded disk, and what a 202 costs. */
const writeTimeoutMs = 5_000;

async function put(
  harness: ClusterHarness,
  id: string,
  path: string,
  value: string,
  minAcks: number | "all" = 1,
) {
  const url = `${harness.node(id).apiUrl}/api/v1/store/${path}?min_acks=${minAcks}`;
  const response = await fetch(url, {
    method: "PUT",
    body: value,
    signal: AbortSignal.timeout(writeTimeoutMs + waitTimeoutMs),
  });
  return { status: response.status, body: (await response.json()) as { acked: boolean; hostsOk: string[] } };
}

async function getValue(harness: ClusterHarness, id: string, path: string): Promise<string | null> {
  const response = await fetch(`${harness.node(id).apiUrl}/api/v1/store/${path}?raw=1`, {
    signal: AbortSignal.timeout(5_000),
  }).catch(() => null);
  return response?.ok ? await response.text() : null;
}

async function waitForValue(
  harness: ClusterHarness,
  id: string,
  path: string,
  value: string,
  timeoutMs = waitTimeoutMs,
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await getValue(harness, id, path)) === value) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${id} never held ${path}=${value}\n${harness.dumpLogs()}`);
}

describe("store: three agents", { timeout: 300_000 }, () => {
  let harness: ClusterHarness;
  after(() => harness?.dispose());

  it("a write acknowledged by all is readable on every node and materialised as files with the configured mode", async () => {
    harness = await ClusterHarness.create({ nodes: 3 });
    for (const id of ids) {
      harness.editConfig(id, (config) => {
        config.store = {
          materialise: { dir: `www/${id}`, prefix: "certs/", file_mode: "0640" },
          write_timeout_ms: writeTimeoutMs,
        };
      });
    }
    harness.startAll();
    await harness.waitForAgreedLeader(ids);
    await harness.waitFor("every link up", ids, (all) =>
      all.size === ids.length && [...all.values()].every((s) => s.peers.every((p) => p.link === "up"))
        ? true
        : undefined,
    );
    const written = await put(harness, "n1", "certs/web.pem", "CERT-1", "all");
    assert.equal(written.status, 200);
    assert.deepEqual(written.body.hostsOk.sort(), ["n2", "n3"]);
    for (const id of ids) {
      assert.equal(await getValue(harness, id, "certs/web.pem"), "CERT-1");
      const file = join(harness.dir, "www", id, "certs/web.pem");
      const deadline = Date.now() + waitTimeoutMs;
      while (!existsSync(file) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(readFileSync(file, "utf8"), "CERT-1");
      assert.equal(statSync(file).mode & 0o777, 0o640);
    }
    await put(harness, "n2", "other/x", "not under the prefix");
    await waitForValue(harness, "n3", "other/x", "not under the prefix");
    assert.equal(
      existsSync(join(harness.dir, "www", "n3", "other/x")),
      false,
      "outside the prefix: not written",
    );
  });

  it("kill -9 a node during writes: every acknowledged write is on the survivors and on it after restart", async () => {
    const acknowledged: Array<{ path: string; value: string }> = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const path = `load/k${i % 50}`;
        const value = `v${i}`;
        const result = await put(harness, "n1", path, value).catch(() => null);
        if (result?.body.acked) acknowledged.push({ path, value });
      }
    })();
    // Phases by acknowledged writes, not by the clock: some before the kill, while n3 is dead, and after
    // it is back and serving, however slowly a loaded machine gets there.
    const ackedAtLeast = async (count: number, phase: string) => {
      const deadline = Date.now() + waitTimeoutMs;
      while (acknowledged.length < count) {
        assert.ok(Date.now() < deadline, `${phase}: ${acknowledged.length} of ${count} writes acknowledged`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      await ackedAtLeast(5, "before the kill");
      await harness.kill("n3", "SIGKILL");
      await ackedAtLeast(acknowledged.length + 5, "while n3 is dead");
      await harness.restart("n3");
      await harness.waitForApi(["n3"]);
      await ackedAtLeast(acknowledged.length + 5, "after n3 restarted");
    } finally {
      stop = true;
      await writer;
    }
    const latest = new Map(acknowledged.map((w) => [w.path, w.value]));
    for (const id of ids) {
      for (const [path, value] of latest) await waitForValue(harness, id, path, value);
    }
  });

  it("a write that cannot reach min_acks answers 202 acked=false and spreads when the peers return", async () => {
    await harness.kill("n2", "SIGKILL");
    await harness.kill("n3", "SIGKILL");
    const lonely = await put(harness, "n1", "certs/late.pem", "LATE", 1);
    assert.equal(lonely.status, 202);
    assert.equal(lonely.body.acked, false);
    await harness.restart("n2");
    await harness.restart("n3");
    await waitForValue(harness, "n2", "certs/late.pem", "LATE");
    await waitForValue(harness, "n3", "certs/late.pem", "LATE");
  });
});
