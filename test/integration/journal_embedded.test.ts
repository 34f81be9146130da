// Apps embedding the agent (tandem/embed): three processes of test/fixtures/user_app.ts, each Tandem's
// agent in the app's process with the app's own SQLite database and an in-process handler, started from
// the real config files over loopback. A user created on one node (the row and the journal entry in one
// transaction) is created by every other node's handler in its own table, also on a node killed with
// kill -9 while others were created and then restarted. With a short outbox_retention the origin prunes
// what every peer holds, down to its newest entry.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { runTandem } from "../support/cli_run.ts";
import { ClusterHarness } from "../support/cluster_harness.ts";
import { waitFor } from "../support/wait_for.ts";

const ids = ["n1", "n2", "n3"];
const app = fileURLToPath(new URL("../fixtures/user_app.ts", import.meta.url));

describe("journal: embedded apps", { timeout: 240_000 }, () => {
  let harness: ClusterHarness;
  after(() => harness?.dispose());

  it("a user created on one node is created on every other by its in-process handler, through kill -9", async () => {
    harness = await ClusterHarness.create({ nodes: 3, script: app });
    const keyFile = join(harness.dir, "journal.key");
    const keygen = await runTandem(["journal", "keygen", "--out", keyFile]);
    assert.equal(keygen.code, 0, keygen.stderr);
    for (const id of ids) {
      harness.editConfig(id, (config) => {
        config.journal = { key_file: keyFile, retry_base_ms: 100, retry_max_ms: 500, outbox_retention: "1s" };
      });
    }
    harness.startAll();
    await harness.waitForAgreedLeader(ids);

    /** The app's port: the last it printed (a restarted app listens on a new one). */
    const appUrl = (id: string): string | undefined => {
      const line = harness
        .logLines(id)
        .filter((l) => l.includes('"app":"listening"'))
        .at(-1);
      return line === undefined
        ? undefined
        : `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`;
    };
    const users = async (id: string): Promise<Array<{ name: string; origin: string }> | undefined> => {
      const url = appUrl(id);
      if (url === undefined) return undefined;
      try {
        const response = await fetch(`${url}/users`, { signal: AbortSignal.timeout(3_000) });
        return response.ok ? ((await response.json()) as Array<{ name: string; origin: string }>) : undefined;
      } catch {
        return undefined;
      }
    };
    const create = async (id: string, name: string) => {
      const url = await waitFor("the app to listen", async () => appUrl(id), harness.dumpLogs.bind(harness));
      const response = await fetch(`${url}/users?name=${name}`, { method: "POST" });
      assert.equal(response.status, 201, await response.text());
    };
    const expected: Array<{ name: string; origin: string }> = [];
    let seen: unknown[] = [];
    const everyNodeHas = (nodes: string[]) =>
      waitFor(
        `${nodes.join(",")} holding ${expected.map((u) => u.name).join(",")}`,
        async () => {
          seen = await Promise.all(nodes.map((id) => users(id)));
          return seen.every((held) => Array.isArray(held) && held.length === expected.length)
            ? true
            : undefined;
        },
        () => `${JSON.stringify(seen)}\n${harness.dumpLogs()}`,
      );

    for (const [id, name] of [
      ["n1", "ann"],
      ["n2", "bob"],
      ["n3", "cy"],
    ] as const) {
      await create(id, name);
      expected.push({ name, origin: id });
    }
    await everyNodeHas(ids);

    await harness.kill("n3");
    for (const [id, name] of [
      ["n1", "dan"],
      ["n2", "eve"],
      ["n1", "fay"],
    ] as const) {
      await create(id, name);
      expected.push({ name, origin: id });
    }
    await everyNodeHas(["n1", "n2"]);
    await harness.restart("n3");
    await everyNodeHas(ids);
    const sorted = [...expected].sort((a, b) => a.name.localeCompare(b.name));
    for (const id of ids) assert.deepEqual(await users(id), sorted, `${id}: each user once, from its origin`);

    // Everything n1 recorded is held by every peer: pruned past the 1 s retention, all but its newest entry.
    const outbox = await waitFor(
      "n1's outbox pruned",
      async () => {
        const response = await fetch(`${harness.node("n1").apiUrl}/api/v1/journal/status`);
        const status = (await response.json()) as {
          unshipped: number;
          outboxSeqs: { first: number; last: number } | null;
          prunedSinceStart: number;
        };
        return status.outboxSeqs?.first === status.outboxSeqs?.last && status.prunedSinceStart > 0
          ? status
          : undefined;
      },
      () => harness.dumpLogs(),
    );
    assert.deepEqual(outbox.outboxSeqs, { first: 3, last: 3 }, "n1 recorded ann, dan, fay");
    assert.equal(outbox.unshipped, 0);
  });
});
