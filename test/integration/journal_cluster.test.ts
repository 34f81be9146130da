// The journal across real agents (processes, CLI, config files, the mesh transport): a small app creates
// users on whichever node it is called; each node's handler creates the user in that node's own folder.
// All three record at once while n3 is killed with kill -9 and later restarted; in the end every node has
// every user, each created once per node, in the order recorded per ordering key. A failing type ends as a
// dead letter, retried through the CLI after its handler is fixed.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runTandem } from "../support/cli_run.ts";
import { ClusterHarness } from "../support/cluster_harness.ts";
import { waitFor } from "../support/wait_for.ts";

const ids = ["n1", "n2", "n3"];

/** The users `id` holds: what its handler created (one file per user, its lines the steps applied). */
function users(dir: string, id: string): Map<string, string[]> {
  const folder = join(dir, "users", id);
  const held = new Map<string, string[]>();
  if (!existsSync(folder)) return held;
  for (const name of readdirSync(folder)) {
    held.set(name, readFileSync(join(folder, name), "utf8").trim().split("\n"));
  }
  return held;
}

describe("journal: three agents", { timeout: 300_000 }, () => {
  let harness: ClusterHarness;
  after(() => harness?.dispose());

  it("every node ends with every other node's users, through kill -9 and restart, once and in order", async () => {
    harness = await ClusterHarness.create({ nodes: 3 });
    const keygen = await runTandem(["journal", "keygen", "--out", join(harness.dir, "journal.key")]);
    assert.equal(keygen.code, 0, keygen.stderr);
    assert.match(keygen.stdout, /public key age1/);
    const again = await runTandem(["journal", "keygen", "--out", join(harness.dir, "journal.key")]);
    assert.equal(again.code, 1, "an existing key is never overwritten");
    // The handler appends the entry's step to users/<node>/<name>: a user created twice, or its steps out
    // of order, shows in the file. It reads the entry from stdin with node (no jq on the machine).
    const handler = (node: string) => [
      process.execPath,
      "-e",
      `const e = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
       const dir = ${JSON.stringify(join(harness.dir, "users", node))};
       require("node:fs").mkdirSync(dir, { recursive: true });
       require("node:fs").appendFileSync(dir + "/" + e.data.name, e.data.step + " " + e.id + "\\n");`,
    ];
    const fixed = join(harness.dir, "fixed");
    for (const id of ids) {
      mkdirSync(join(harness.dir, "users", id), { recursive: true });
      harness.editConfig(id, (config) => {
        config.journal = {
          key_file: join(harness.dir, "journal.key"),
          retry_base_ms: 100,
          retry_max_ms: 500,
          max_attempts: 3,
          // A post-execution step: each node notes its own user.create entries once they are shipped.
          steps: {
            archive: {
              exec: [
                "sh",
                "-c",
                `mkdir -p "$0" && touch "$0/$TANDEM_ENTRY_ID"`,
                join(harness.dir, "steps", id),
              ],
              types: ["user.create"],
            },
          },
          handlers: {
            "user.create": { exec: handler(id) },
            "user.update": { exec: handler(id) },
            // Fails until the test writes `fixed`.
            "user.audit": { exec: ["sh", "-c", `test -e "${fixed}"`] },
          },
        };
      });
    }
    harness.startAll();
    await harness.waitForAgreedLeader(ids);
    const dump = () =>
      `${ids.map((id) => `${id}: ${JSON.stringify([...users(harness.dir, id)])}`).join("\n")}\n${harness.dumpLogs()}`;

    /** The entry's id, or null when the agent did not acknowledge it (killed meanwhile). */
    const record = async (node: string, type: string, name: string, step: string): Promise<string | null> => {
      const result = await runTandem([
        "journal",
        "record",
        type,
        "--api",
        harness.node(node).apiUrl,
        "--key",
        `user:${name}`,
        "--data",
        JSON.stringify({ name, step }),
      ]);
      return result.code === 0 ? result.stdout.trim() : null;
    };
    /** Per user: its origin, and the steps the origin acknowledged (so durable there). */
    const acked = new Map<string, { origin: string; steps: string[] }>();
    const recordAll = (nodes: string[], round: number) =>
      Promise.all(
        nodes.map(async (node) => {
          for (let i = 0; i < 4; i++) {
            const name = `${node}-user${round}-${i}`;
            const user = { origin: node, steps: [] as string[] };
            acked.set(name, user);
            if ((await record(node, "user.create", name, "create")) === null) return;
            user.steps.push("create");
            if ((await record(node, "user.update", name, "update")) === null) return;
            user.steps.push("update");
          }
        }),
      );
    // Each node creates its own users and updates them, all at once; n3 is killed mid-way.
    const writing = recordAll(ids, 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await harness.kill("n3");
    await writing;
    await recordAll(["n1", "n2"], 2);
    harness.start("n3");
    await harness.waitForAgreedLeader(ids);
    await recordAll(ids, 3);
    for (const id of ["n1", "n2"]) {
      assert.ok([...acked.values()].filter((u) => u.origin === id).every((u) => u.steps.length === 2));
    }

    // Every acknowledged step is applied on every other node; an unacknowledged one of the killed n3 may be
    // too (it was durable before the answer was lost), but only in order and only once.
    const complete = (held: string[] | undefined, steps: string[]) =>
      steps.every((step, i) => held?.[i]?.split(" ")[0] === step);
    await waitFor(
      "every node holding every other node's acknowledged users",
      async () => {
        for (const id of ids) {
          const held = users(harness.dir, id);
          for (const [name, user] of acked) {
            if (user.origin !== id && !complete(held.get(name), user.steps)) return undefined;
          }
        }
        return true;
      },
      dump,
    );
    for (const id of ids) {
      for (const [name, steps] of users(harness.dir, id)) {
        assert.notEqual(acked.get(name)?.origin, id, `${id} applied its own entry ${name}`);
        const kinds = steps.map((s) => s.split(" ")[0]);
        assert.deepEqual(
          kinds,
          ["create", "update"].slice(0, kinds.length),
          `${id}/${name}: once each, in order`,
        );
      }
    }

    // A type whose handler fails ends as a dead letter on the other nodes, and holds back nothing else.
    const audit = await record("n1", "user.audit", "ann", "audit");
    assert.ok(audit !== null);
    assert.ok((await record("n1", "user.create", "late-ann", "create")) !== null);
    await waitFor(
      "the audit entry a dead letter on n2, late-ann created",
      async () => {
        const dead = await runTandem(["journal", "dead", "--json", "--api", harness.node("n2").apiUrl]);
        const list = JSON.parse(dead.stdout || "{}") as { deadLetters?: Array<{ id: string }> };
        return list.deadLetters?.some((d) => d.id === audit) && users(harness.dir, "n2").has("late-ann")
          ? true
          : undefined;
      },
      dump,
    );
    writeFileSync(fixed, "");
    const retry = await runTandem(["journal", "retry", audit, "--api", harness.node("n2").apiUrl]);
    assert.equal(retry.code, 0, retry.stderr);
    await waitFor(
      "the retried entry applied (no dead letters left on n2)",
      async () => {
        const status = await runTandem(["journal", "status", "--json", "--api", harness.node("n2").apiUrl]);
        return (JSON.parse(status.stdout || "{}") as { deadLetters?: number }).deadLetters === 0
          ? true
          : undefined;
      },
      dump,
    );
    // n2 kept running throughout: every user it created was shipped, and its archive step ran for each.
    const n2Creates = [...acked].filter(([, u]) => u.origin === "n2").length;
    await waitFor(
      "n2's archive step run for each of its user.create entries",
      async () => {
        const folder = join(harness.dir, "steps", "n2");
        return existsSync(folder) && readdirSync(folder).length === n2Creates ? true : undefined;
      },
      dump,
    );
    const status = await waitFor(
      "n1's status with no step owed",
      async () => {
        const result = await runTandem(["journal", "status", "--api", harness.node("n1").apiUrl]);
        return /^steps\s+0 owed, 0 given up$/m.test(result.stdout) ? result : undefined;
      },
      dump,
    );
    assert.match(status.stdout, /^queue\s+mesh$/m);
    assert.match(status.stdout, /^recipient\s+age1[0-9a-z]+ /m);
    assert.match(status.stdout, /^peer n2\s+delivered through outbox \d+, ok$/m);
    assert.match(
      status.stdout,
      /^outbox\s+entries 1-\d+ kept; pruned after 7d once shipped \(0 since start\)$/m,
    );
  });
});
