// Services across real agents (processes, CLI, config files): a service runs on exactly one node, its
// preferred one; kill -9 of its owner and it starts on another node under a newer grant, after the old
// grant could have lapsed. The exec driver writes one line per start and stop (node, fencing token, time)
// into a file shared by the three agents, which is what this test reads. Then its health check fails where
// it runs, and it moves to the last node: stopped on the sick one before it starts there. Last, operators
// move it and drain a node through the CLI, and `tandem events` shows what happened.
import assert from "node:assert/strict";
import { appendFileSync, existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runTandem } from "../support/cli_run.ts";
import { ClusterHarness } from "../support/cluster_harness.ts";
import { waitFor, waitForTimeoutMs } from "../support/wait_for.ts";

const ids = ["n1", "n2", "n3"];

interface ServicesJson {
  term: number;
  services: {
    name: string;
    owner: string | null;
    state: string | null;
    fence: string | null;
    code: string;
  }[];
}

async function services(harness: ClusterHarness, id: string): Promise<ServicesJson | null> {
  const response = await fetch(`${harness.node(id).apiUrl}/api/v1/services`, {
    signal: AbortSignal.timeout(5_000),
  }).catch(() => null);
  return response?.ok ? ((await response.json()) as ServicesJson) : null;
}

interface DriverLine {
  step: "start" | "stop";
  node: string;
  fence: string;
  atMs: number;
}

function driverLines(file: string): DriverLine[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const [step, node, fence, atMs] = line.split(" ");
      return { step: step as "start" | "stop", node: node ?? "", fence: fence ?? "", atMs: Number(atMs) };
    });
}

/** A fence "term.seq" as a pair that sorts grants in order. */
function fenceOrder(fence: string): [number, number] {
  const [term = 0, seq = 0] = fence.split(".").map(Number);
  return [term, seq];
}

describe("services: three agents", { timeout: 300_000 }, () => {
  let harness: ClusterHarness;
  after(() => harness?.dispose());

  it("runs on its preferred node only; after kill -9 of the owner it starts on another under a newer grant", async () => {
    harness = await ClusterHarness.create({ nodes: 3 });
    const log = join(harness.dir, "web.log");
    appendFileSync(log, "");
    // Each step appends "<step> <node> <fence> <ms since epoch>"; node's clock, one machine.
    const step = (name: string) => [
      process.execPath,
      "-e",
      `require("node:fs").appendFileSync(${JSON.stringify(log)}, "${name} " + process.env.TANDEM_NODE + " " + process.env.TANDEM_TERM + " " + Date.now() + "\\n")`,
    ];
    for (const id of ids) {
      harness.editConfig(id, (config) => {
        config.services = [
          {
            name: "web",
            prefer: ["n2"],
            failover_after_ms: 1000,
            drivers: [{ type: "exec", start: step("start"), stop: step("stop") }],
            // Sick where the test writes sick-<node>.
            health: {
              exec: ["sh", "-c", `test ! -e "${harness.dir}/sick-$TANDEM_NODE"`],
              interval_ms: 200,
              failures: 2,
            },
            actions: {
              hello: {
                run: [
                  process.execPath,
                  "-e",
                  "console.log('hello from', process.env.TANDEM_NODE, process.argv.slice(1).join(' ')); process.exit(Number(process.argv[1] ?? 0))",
                ],
              },
              // Says it started (a file the test waits for), then runs long enough for a move to land.
              slow: { run: ["sh", "-c", `echo "$TANDEM_NODE" > "${harness.dir}/slow-started"; sleep 10`] },
            },
          },
        ];
      });
    }
    harness.startAll();
    await harness.waitForAgreedLeader(ids);
    const dump = () => `${readFileSync(log, "utf8")}\n${harness.dumpLogs()}`;
    await waitFor(
      "web running on n2, as every node sees it",
      async () => {
        const views = await Promise.all(ids.map((id) => services(harness, id)));
        const ok = views.every((v) => v?.services[0]?.owner === "n2" && v.services[0].state === "running");
        return ok ? true : undefined;
      },
      dump,
    );
    const cli = await runTandem(["services", "--api", harness.node("n3").apiUrl]);
    assert.equal(cli.code, 0, cli.stderr);
    // These agents run no journal: its commands say so, not "no route".
    const journal = await runTandem(["journal", "status", "--api", harness.node("n3").apiUrl]);
    assert.equal(journal.code, 1);
    assert.match(journal.stderr, /this node runs no journal \(its tandem.yml has no journal: section/);
    assert.match(cli.stdout, /^web\s+n2\s+running\s+\S+\s+\d+\.\d+\s+(placed|runs) on n2$/m);
    // At start each agent stops what an earlier run may have left (no status command: it cannot tell),
    // outside any grant ("0.0"); only then does it report to the leader.
    const probes = driverLines(log).filter((l) => l.fence === "0.0");
    assert.deepEqual(probes.map((l) => `${l.step} ${l.node}`).sort(), ["stop n1", "stop n2", "stop n3"]);
    const first = driverLines(log).filter((l) => l.fence !== "0.0");
    assert.deepEqual(
      first.map((l) => `${l.step} ${l.node}`),
      ["start n2"],
      "started once, on its preferred node",
    );

    const killedAtMs = Date.now();
    await harness.kill("n2");
    const survivors = ids.filter((id) => id !== "n2");
    const moved = await waitFor(
      "web running on another node",
      async () => {
        const view = await services(harness, survivors[0] as string);
        const web = view?.services[0];
        return web && web.owner !== "n2" && web.owner !== null && web.state === "running" ? web : undefined;
      },
      dump,
    );
    const lines = driverLines(log).filter((l) => l.fence !== "0.0");
    const restarted = lines.find((l) => l.step === "start" && l.node !== "n2");
    assert.ok(restarted, dump());
    assert.equal(restarted.node, moved.owner);
    assert.ok(restarted.atMs >= killedAtMs, "started elsewhere only after the owner died");
    const [oldTerm, oldSeq] = fenceOrder(first[0]?.fence ?? "");
    const [newTerm, newSeq] = fenceOrder(restarted.fence);
    assert.ok(
      newTerm > oldTerm || (newTerm === oldTerm && newSeq > oldSeq),
      `${restarted.fence} after ${first[0]?.fence}`,
    );
    assert.equal(lines.filter((l) => l.step === "start").length, 2, "started exactly once more");

    // Its health check fails where it runs now: it moves to the last node, as from a dead owner.
    const sick = moved.owner as string;
    const last = survivors.find((id) => id !== sick) as string;
    appendFileSync(join(harness.dir, `sick-${sick}`), "");
    await waitFor(
      `web moved off ${sick}, whose health check fails`,
      async () => {
        const web = (await services(harness, last))?.services[0];
        return web?.owner === last && web.state === "running" ? true : undefined;
      },
      dump,
    );
    const after = driverLines(log).filter((l) => l.fence !== "0.0");
    const stoppedSick = after.find((l) => l.step === "stop" && l.node === sick);
    const startedLast = after.find((l) => l.step === "start" && l.node === last);
    assert.ok(stoppedSick && startedLast, dump());
    assert.ok(stoppedSick.atMs <= startedLast.atMs, "stopped on the sick node before it started elsewhere");

    // Operators, through the CLI on a follower (the leader makes the change): a move, then a drain.
    rmSync(join(harness.dir, `sick-${sick}`));
    const { leaderId } = await harness.waitForAgreedLeader(survivors);
    const follower = harness.node(survivors.find((id) => id !== leaderId) as string).apiUrl;
    const runsOn = (node: string) =>
      waitFor(
        `web running on ${node}`,
        async () => {
          const web = (await services(harness, last))?.services[0];
          return web?.owner === node && web.state === "running" ? true : undefined;
        },
        dump,
      );
    const refusedMove = await runTandem(["service", "move", "web", "n2", "--api", follower]);
    assert.equal(refusedMove.code, 1);
    assert.match(refusedMove.stderr, /n2 is unreachable/);
    // Passed over for 30 s after its failed health check: refused, saying so, until then.
    const moveDeadline = Date.now() + waitForTimeoutMs;
    for (;;) {
      const moved = await runTandem(["service", "move", "web", sick, "--api", follower]);
      if (moved.code === 0) break;
      assert.match(moved.stderr, new RegExp(`web failed on ${sick} lately`));
      assert.ok(Date.now() < moveDeadline, `move to ${sick} still refused\n${dump()}`);
      await new Promise((r) => setTimeout(r, 1_000));
    }
    await runsOn(sick);
    const drained = await runTandem(["node", "drain", sick, "--api", follower]);
    assert.equal(drained.code, 0, drained.stderr);
    await runsOn(last);
    const listed = await runTandem(["services", "--api", harness.node(last).apiUrl]);
    assert.match(listed.stdout, new RegExp(`^drained: ${sick}$`, "m"));
    const refusedDrained = await runTandem(["service", "move", "web", sick, "--api", follower]);
    assert.match(refusedDrained.stderr, new RegExp(`${sick} is drained`));
    assert.equal((await runTandem(["node", "undrain", sick, "--api", follower])).code, 0);

    // An action, asked of a node that does not run web: run where it runs, its output and exit code back.
    const notOwner = survivors.find((id) => id !== last) as string;
    const hello = await runTandem([
      "service",
      "action",
      "web",
      "hello",
      "0",
      "x",
      "--api",
      harness.node(notOwner).apiUrl,
    ]);
    assert.equal(hello.code, 0, hello.stderr);
    assert.equal(hello.stdout, `hello from ${last} 0 x`);
    const failing = await runTandem([
      "service",
      "action",
      "web",
      "hello",
      "3",
      "--api",
      harness.node(notOwner).apiUrl,
    ]);
    assert.equal(failing.code, 3);
    const logs = await runTandem(["service", "logs", "web", "--api", harness.node(notOwner).apiUrl]);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, new RegExp(`^\\S+ ${last} action hello   hello from ${last} 0 x$`, "m"));
    assert.match(logs.stdout, new RegExp(`^\\S+ ${last} action hello \\* exit 3$`, "m"));
    // The owner changes while an action runs: a clear error naming the new owner.
    const slow = runTandem(["service", "action", "web", "slow", "--api", harness.node(notOwner).apiUrl]);
    const started = join(harness.dir, "slow-started");
    await waitFor("the slow action running", async () => (existsSync(started) ? true : undefined), dump);
    assert.equal(readFileSync(started, "utf8").trim(), last, "it runs where web runs");
    assert.equal(
      (await runTandem(["service", "move", "web", notOwner, "--api", harness.node(last).apiUrl])).code,
      0,
    );
    const interrupted = await slow;
    assert.equal(interrupted.code, 1);
    assert.match(
      interrupted.stderr,
      new RegExp(`web left ${last} while the action ran .*; it now runs on ${notOwner}`),
    );

    // What the last node saw, as events: a leader, placements of web, its own driver runs, the drain.
    const events = await runTandem(["events", "--json", "--api", harness.node(last).apiUrl]);
    assert.equal(events.code, 0, events.stderr);
    const seen = events.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const kinds = new Set(seen.map((e) => e.kind));
    for (const kind of ["leader", "placement", "driver", "drain"])
      assert.ok(kinds.has(kind), `${kind} in ${events.stdout}`);
    assert.ok(
      seen.some((e) => e.kind === "driver" && e.service === "web" && e.step === "start" && e.ok === true),
      events.stdout,
    );
    assert.ok(
      seen.some((e) => e.kind === "placement" && e.to === last),
      events.stdout,
    );
    assert.deepEqual(
      seen.filter((e) => e.kind === "drain").map((e) => [e.node, e.drained]),
      [
        [sick, true],
        [sick, false],
      ],
    );
  });
});
