// The services node's glue around placement: a new leader's first round does not wait for the placement
// period once every member it can reach has reported (a failover that comes with a leader change).
import assert from "node:assert/strict";
import { test } from "node:test";
import { pino } from "pino";
import type { Coordination, LeadershipView } from "../../../src/cluster/index.ts";
import { NotLeaderError } from "../../../src/cluster/index.ts";
import type { MemberSpec } from "../../../src/core/membership.ts";
import { Role } from "../../../src/core/types.ts";
import { encodeJsonPayload } from "../../../src/mesh/index.ts";
import { ServicesNode } from "../../../src/services/services_node.ts";
import { SERVICES_CHANNEL } from "../../../src/services/services_wire.ts";
import { Ticker } from "../../../src/shell/index.ts";
import { MemoryNetwork } from "../../support/memory_mesh.ts";
import { serviceConfig } from "../../support/service_config.ts";

const member = (id: string): MemberSpec => ({
  id,
  address: "",
  role: "member",
  priority: 1,
  voting: true,
  autoPromote: false,
});

function leaderCoordination(unreachable: ReadonlySet<string>): Coordination {
  const view: LeadershipView = { leaderId: "n1", term: 2, role: Role.Leader, leaseValid: true };
  const members = ["n1", "n2", "n3"].map(member);
  return {
    leadership: () => view,
    members: () => members,
    memberLiveness: () => members.map(({ id }) => ({ id, unreachableMs: unreachable.has(id) ? 800 : 0 })),
    assignService: async () => {},
    grants: () => [],
    acquireGrant: () => Promise.reject(new NotLeaderError(null, "not in this test")),
    releaseGrant: async () => {},
    checkFence: () => ({ ok: false, reason: "not in this test" }),
    addCatchUpCheck: () => {},
    on: () => () => {},
  } as Coordination;
}

/** n1 leads; its ticker never fires (the placement period never comes), so only reports can start a round. */
async function newLeader(unreachable: ReadonlySet<string>) {
  const network = new MemoryNetwork();
  const n1 = network.join("n1");
  const peers = { n2: network.join("n2"), n3: network.join("n3") };
  network.connectAll();
  const tables: string[] = [];
  peers.n2.onMessage(SERVICES_CHANNEL, (_from, payload) => tables.push(new TextDecoder().decode(payload)));
  const ticker = new Ticker({ timers: { setTimeout: () => null, clearTimeout: () => {} } });
  const node = new ServicesNode({
    nodeId: "n1",
    // Only n2 and n3 may run it: n1 has no runner to start.
    services: [serviceConfig("web", { nodes: ["n2", "n3"], failoverAfterMs: 1000 })],
    drivers: () => [],
    mesh: n1,
    coordination: leaderCoordination(unreachable),
    ticker,
    leaseMs: 2000,
    logger: pino({ level: "silent" }),
    openWindow: () => null,
    dataDir: null,
  });
  await node.start();
  const report = (from: "n2" | "n3") =>
    peers[from].send("n1", SERVICES_CHANNEL, encodeJsonPayload({ kind: "report", services: {} }));
  const settle = () => new Promise((resolve) => setTimeout(resolve, 100));
  /** The ticker never fires here: only the first-round rule can send a table. */
  const tableSent = async () => {
    for (let waited = 0; tables.length === 0 && waited < 5_000; waited += 10)
      await new Promise((resolve) => setTimeout(resolve, 10));
    return tables.length;
  };
  return { node, network, tables, report, settle, tableSent };
}

test("services node: a new leader's first round runs once every reachable member reported", async () => {
  const w = await newLeader(new Set());
  w.report("n2");
  await w.settle();
  assert.equal(w.tables.length, 0, "n3 has not reported yet");
  w.report("n3");
  assert.equal(await w.tableSent(), 1, "the table went out without waiting for the placement period");
  assert.match(w.tables[0] as string, /"kind":"table"/);
  await w.node.stop();
  w.network.close();
});

test("services node: a member it cannot reach does not hold the first round back", async () => {
  const w = await newLeader(new Set(["n3"]));
  w.report("n2");
  assert.equal(await w.tableSent(), 1);
  await w.node.stop();
  w.network.close();
});
