// Where services go when nodes come back or fail to start them, across real agents on loopback (real CLI,
// config files), read from the exec drivers' journals (service_driver_log.ts) and GET /api/v1/services.
//
// Failback: two services prefer n1; "home" has a restore window that is always open (one opening a minute,
// each a minute long), "stay" one that never opens (February 30). n1 stops (SIGTERM: it stops them and
// hands them on), both move; when n1 is back, "home" moves back to it exactly once, in the very rounds
// where "stay" stays where it went: only the window differs.
//
// A failing start: the exec driver's start fails on n1, the preferred node, so the service moves on to n2,
// the next one, under a newer grant, and the failure is in the agents' logs (n1's runner, the leader's
// placement decision).
import assert from "node:assert/strict";
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { ServiceJson, ServicesJson } from "../../src/api/index.ts";
import { ClusterHarness } from "../support/cluster_harness.ts";
import {
  assertNeverTwoAtOnce,
  compareFenceText,
  type DriverLine,
  failingStartCommand,
  formatLines,
  grantedLines,
  journalCommand,
  readDriverLines,
  runningNodes,
} from "../support/service_driver_log.ts";
import { waitFor, waitForTimeoutMs } from "../support/wait_for.ts";

const ids = ["n1", "n2", "n3"];
/** After a move: watched this long, and this many samples in which every running node answered. */
const settleWatchMs = 3_000;
const settleSamplesMin = 6;

async function services(harness: ClusterHarness, id: string): Promise<ServicesJson | null> {
  const response = await fetch(`${harness.node(id).apiUrl}/api/v1/services`, {
    signal: AbortSignal.timeout(5_000),
  }).catch(() => null);
  return response?.ok ? ((await response.json().catch(() => null)) as ServicesJson | null) : null;
}

/** The entry of `name` as each listed node shows it, or null for a node that did not answer. */
async function entries(harness: ClusterHarness, name: string, nodes: readonly string[]) {
  const views = await Promise.all(nodes.map((id) => services(harness, id)));
  return views.map((view) => view?.services.find((s) => s.name === name) ?? null);
}

/** `name` running on `owner` in the view of every listed node. */
async function runsOn(
  harness: ClusterHarness,
  name: string,
  owner: (entry: ServiceJson) => boolean,
  nodes: readonly string[],
): Promise<ServiceJson | undefined> {
  const seen = await entries(harness, name, nodes);
  const first = seen[0];
  if (first?.state !== "running" || !owner(first)) return undefined;
  return seen.every((s) => s?.owner === first.owner && s.state === "running" && s.fence === first.fence)
    ? first
    : undefined;
}

/** The pino records with this message that any node logged. */
function logged(harness: ClusterHarness, pattern: RegExp): Array<Record<string, unknown>> {
  return ids.flatMap((id) =>
    harness.logLines(id).flatMap((line) => {
      try {
        const record = JSON.parse(line) as Record<string, unknown>;
        return typeof record.msg === "string" && pattern.test(record.msg) ? [record] : [];
      } catch {
        return [];
      }
    }),
  );
}

/** Starts n1 first, then the others once its API answers: n1 is reachable before anyone can lead. */
async function startWithN1First(harness: ClusterHarness): Promise<void> {
  harness.start("n1");
  await harness.waitForApi(["n1"], waitForTimeoutMs);
  harness.start("n2");
  harness.start("n3");
  await harness.waitForAgreedLeader(ids, waitForTimeoutMs);
}

describe("services: failback in restore windows (3 agents on loopback)", { timeout: 240_000 }, () => {
  let harness: ClusterHarness | undefined;
  after(() => harness?.dispose());

  it("the preferred node back: moves home exactly once inside its window, stays put outside", async () => {
    harness = await ClusterHarness.create({ nodes: 3 });
    const h = harness;
    const journal = (name: string) => join(h.dir, `${name}.log`);
    const windows = {
      // Every minute, for a minute: open at every moment.
      home: { cron: "* * * * *", length: "1m", timezone: "UTC" },
      // February 30: never.
      stay: { cron: "0 0 30 2 *", length: "1h", timezone: "UTC" },
    };
    for (const name of Object.keys(windows)) appendFileSync(journal(name), "");
    for (const id of ids) {
      h.editConfig(id, (config) => {
        config.services = Object.entries(windows).map(([name, window]) => ({
          name,
          prefer: ["n1"],
          failover_after_ms: 1_000,
          restore_window: window,
          drivers: [
            {
              type: "exec",
              start: journalCommand(journal(name), "start"),
              stop: journalCommand(journal(name), "stop"),
            },
          ],
        }));
      });
    }
    const lines = (name: string) => readDriverLines(journal(name));
    const dump = () =>
      `${Object.keys(windows)
        .map((name) => `${name}:\n${formatLines(lines(name))}`)
        .join("\n")}\n${h.dumpLogs()}`;

    await startWithN1First(h);
    for (const name of Object.keys(windows)) {
      await waitFor(`${name} running on n1`, () => runsOn(h, name, (s) => s.owner === "n1", ids), dump);
    }

    // n1 goes away: it stops both and releases their grants; they start elsewhere.
    await h.kill("n1", "SIGTERM");
    const others = ["n2", "n3"];
    const away = new Map<string, ServiceJson>();
    for (const name of Object.keys(windows)) {
      const moved = await waitFor(
        `${name} running without n1`,
        () => runsOn(h, name, (s) => s.owner !== "n1", others),
        dump,
      );
      away.set(name, moved);
    }

    // n1 comes back. "home" moves back to it; that round "stay" is placed as well and stays.
    const returnedAtMs = Date.now();
    await h.restart("n1");
    const home = await waitFor(
      "home back on n1",
      () => runsOn(h, "home", (s) => s.owner === "n1", ids),
      dump,
    );
    const length = new Map(Object.keys(windows).map((name) => [name, lines(name).length]));
    const watchUntilMs = Date.now() + settleWatchMs;
    let samples = 0;
    while (Date.now() < watchUntilMs || samples < settleSamplesMin) {
      const [homeNow, stayNow] = [await entries(h, "home", ids), await entries(h, "stay", ids)];
      for (const entry of homeNow) if (entry) assert.equal(entry.owner, "n1", "home left n1 again");
      for (const entry of stayNow) {
        if (entry) assert.equal(entry.owner, away.get("stay")?.owner, "stay moved outside its window");
      }
      if ([...homeNow, ...stayNow].every((e) => e !== null)) samples += 1;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    // Nothing ran anywhere else since (a holder whose renewal came back late may restart it in place).
    const owners = { home: "n1", stay: away.get("stay")?.owner };
    for (const [name, owner] of Object.entries(owners)) {
      const since = lines(name).slice(length.get(name));
      assert.deepEqual(
        since.filter((l) => l.node !== owner),
        [],
        `${name} ran off ${owner}\n${dump()}`,
      );
    }

    // From the journals: one interval after another, each under a newer grant.
    const homeLines = lines("home");
    assertNeverTwoAtOnce(homeLines, "home");
    assert.deepEqual(runningNodes(homeLines), ["n1"], formatLines(homeLines));
    const homeSince = grantedLines(homeLines).filter((l) => l.atMs >= returnedAtMs);
    const awayOwner = away.get("home")?.owner;
    assert.deepEqual(
      homeSince.slice(0, 2).map((l) => `${l.step} ${l.node}`),
      [`stop ${awayOwner}`, "start n1"],
      `home moved home, stopped where it was first\n${formatLines(homeLines)}`,
    );
    assert.deepEqual(
      homeSince.slice(2).filter((l) => l.node !== "n1"),
      [],
      `home moved home once, and stayed\n${formatLines(homeLines)}`,
    );
    const [stopAway, startHome] = homeSince as [DriverLine, DriverLine];
    assert.ok(stopAway.atMs <= startHome.atMs);
    assert.ok(compareFenceText(startHome.fence, stopAway.fence) > 0, formatLines(homeLines));
    assert.ok(compareFenceText(home.fence ?? "", startHome.fence) >= 0, `${home.fence} shown`);

    const stayLines = lines("stay");
    assertNeverTwoAtOnce(stayLines, "stay");
    assert.deepEqual(runningNodes(stayLines), [away.get("stay")?.owner], formatLines(stayLines));
    assert.deepEqual(
      grantedLines(stayLines).filter((l) => l.atMs >= returnedAtMs && l.node !== away.get("stay")?.owner),
      [],
      `stay ran elsewhere after n1 returned\n${formatLines(stayLines)}`,
    );

    // The leaders' decisions say why: one failback of home after n1 returned, none of stay, ever.
    const failbacks = logged(h, /^placement: back home/).filter((r) => (r.time as number) >= returnedAtMs);
    assert.deepEqual(
      failbacks.map((r) => `${r.service} ${r.from}->${r.to}`),
      [`home ${awayOwner}->n1`],
      dump(),
    );
    assert.deepEqual(
      logged(h, /^placement: back home/).filter((r) => r.service === "stay"),
      [],
      "stay failed back outside its window",
    );
  });
});

describe("services: a start that fails on the preferred node (3 agents on loopback)", {
  timeout: 240_000,
}, () => {
  let harness: ClusterHarness | undefined;
  after(() => harness?.dispose());

  it("moves the service on to the next preferred node, under a newer grant; the failure is logged", async () => {
    harness = await ClusterHarness.create({ nodes: 3 });
    const h = harness;
    const log = join(h.dir, "web.log");
    appendFileSync(log, "");
    for (const id of ids) {
      h.editConfig(id, (config) => {
        config.services = [
          {
            name: "web",
            prefer: ["n1", "n2"],
            // Long: a new service waits this long for its preferred node to finish starting.
            failover_after_ms: 10_000,
            drivers: [
              { type: "exec", start: failingStartCommand(log, "n1"), stop: journalCommand(log, "stop") },
            ],
          },
        ];
      });
    }
    const dump = () => `${formatLines(readDriverLines(log))}\n${h.dumpLogs()}`;
    await startWithN1First(h);
    const web = await waitFor(
      "web running on n2",
      () => runsOn(h, "web", (s) => s.owner === "n2", ids),
      dump,
    );

    const lines = grantedLines(readDriverLines(log));
    assert.deepEqual(
      lines.slice(0, 2).map((l) => `${l.step} ${l.node}`),
      ["fail n1", "start n2"],
      `tried on n1 first, then started on n2\n${dump()}`,
    );
    const [failed, started] = lines as [DriverLine, DriverLine];
    assert.ok(failed.atMs <= started.atMs);
    assert.ok(compareFenceText(started.fence, failed.fence) > 0, formatLines(lines));
    assert.ok(
      compareFenceText(web.fence ?? "", started.fence) >= 0,
      `${web.fence} shown, ${started.fence} started`,
    );

    // The failure: n1's own report (its section of GET /api/v1/status) says it failed there and why...
    const n1Report = await fetch(`${h.node("n1").apiUrl}/api/v1/status`, {
      signal: AbortSignal.timeout(5_000),
    })
      .then((r) => r.json() as Promise<{ services?: Record<string, { state: string; detail: string }> }>)
      .catch((error: unknown) => assert.fail(`n1's status: ${String(error)}`));
    assert.equal(n1Report.services?.web?.state, "failed", JSON.stringify(n1Report.services));
    assert.equal(n1Report.services?.web?.detail, "exec start failed");
    // ...its runner logged it, and the leader moved the service for that reason.
    const failedRun = logged(h, /^service failed$/).filter((r) => r.service === "web");
    assert.ok(
      failedRun.some((r) => r.node === "n1" && r.detail === "exec start failed"),
      `n1 logged no failed start\n${dump()}`,
    );
    const decisions = logged(h, /^placement: it failed to start on n1/);
    assert.deepEqual(
      decisions.map((r) => `${r.service} ${r.from}->${r.to} ${r.code}`),
      ["web n1->n2 failover"],
      dump(),
    );

    // And it stays on n2 (n1 is passed over for a while; after that, n2 keeps it: sticky).
    const watchUntilMs = Date.now() + settleWatchMs;
    while (Date.now() < watchUntilMs) {
      for (const entry of await entries(h, "web", ids)) if (entry) assert.equal(entry.owner, "n2");
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const all = grantedLines(readDriverLines(log));
    assert.deepEqual(runningNodes(all), ["n2"]);
    assert.deepEqual(
      all.slice(2).filter((l) => l.node !== "n2"),
      [],
      `web ran off n2 since\n${dump()}`,
    );
  });
});
