import assert from "node:assert/strict";
import { test } from "node:test";
import type { ChangeOutcome } from "../../../src/cluster/index.ts";
import { FakeCluster, serveMembers } from "./member_fake_cluster.ts";
import { rawRequest } from "./store_http.ts";

const json = { "content-type": "application/json" };

async function startMembersApi(
  t: { after(fn: () => unknown): void },
  acl?: Parameters<typeof serveMembers>[2],
) {
  const cluster = new FakeCluster();
  cluster.down.add("n3");
  cluster.configDrift = ["n4 is in membership v7 but not configured"];
  return { cluster, base: await serveMembers(t, cluster, acl) };
}

test("members api: GET lists the held membership with each node's link, state and announced version", async (t) => {
  const { base } = await startMembersApi(t);
  const listed = await rawRequest(base, "GET", "/api/v1/members");
  assert.equal(listed.status, 200);
  const body = listed.json();
  assert.deepEqual(
    { ...body, members: undefined },
    {
      version: 7,
      hash: "cd".repeat(8),
      committedVersion: 7,
      pendingVersion: null,
      standing: "voter",
      leader: "n2",
      term: 5,
      configDrift: ["n4 is in membership v7 but not configured"],
      members: undefined,
    },
  );
  const rows = (body.members as Array<Record<string, unknown>>).map((m) => [
    m.id,
    m.self,
    m.voting,
    m.autoPromote,
    m.link,
    m.state,
    m.announcedVersion,
  ]);
  assert.deepEqual(rows, [
    ["n1", true, true, false, "self", "self", 7],
    ["n2", false, true, false, "up", "alive", 7],
    ["n3", false, true, false, "down", "down", null],
    ["n4", false, false, true, "up", "alive", 6],
  ]);
  const one = await rawRequest(base, "GET", "/api/v1/members/n3");
  assert.equal(one.status, 200);
  assert.equal(one.json().role, "witness");
  const missing = await rawRequest(base, "GET", "/api/v1/members/n9");
  assert.equal(missing.status, 404);
  assert.match(missing.json().error?.message ?? "", /n9 is not a member/);
});

test("members api: POST adds a node that the leader promotes once caught up, unless it stays a learner", async (t) => {
  const { cluster, base } = await startMembersApi(t);
  const added = await rawRequest(base, "POST", "/api/v1/members", {
    headers: json,
    body: JSON.stringify({ id: "n5", address: "[::1]:7405" }),
  });
  assert.equal(added.status, 200);
  assert.deepEqual(added.json(), { version: 8 });
  const learner = await rawRequest(base, "POST", "/api/v1/members", {
    headers: json,
    body: JSON.stringify({ id: "w6", address: "10.0.0.6:7400", role: "witness", priority: 5, learner: true }),
  });
  assert.equal(learner.status, 200);
  assert.deepEqual(cluster.changes, [
    {
      change: {
        type: "add",
        node: { id: "n5", address: "[::1]:7405", role: "member", priority: 100, autoPromote: true },
      },
      force: false,
    },
    {
      change: {
        type: "add",
        node: { id: "w6", address: "10.0.0.6:7400", role: "witness", priority: 5, autoPromote: false },
      },
      force: false,
    },
  ]);
});

test("members api: remove, promote, demote and update, with force where asked", async (t) => {
  const { cluster, base } = await startMembersApi(t);
  const send = (method: string, path: string, body?: unknown) =>
    rawRequest(base, method, path, {
      headers: json,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  assert.equal((await send("DELETE", "/api/v1/members/n3?force=true")).status, 200);
  assert.equal((await send("POST", "/api/v1/members/n4/promote")).status, 200);
  assert.equal((await send("POST", "/api/v1/members/n2/demote?force=1", {})).status, 200);
  assert.equal(
    (await send("PATCH", "/api/v1/members/n2", { address: "10.0.1.2:7400", priority: 50 })).status,
    200,
  );
  assert.equal((await send("PATCH", "/api/v1/members/n4", { role: "witness" })).status, 200);
  assert.deepEqual(cluster.changes, [
    { change: { type: "remove", id: "n3" }, force: true },
    { change: { type: "promote", id: "n4" }, force: false },
    { change: { type: "demote", id: "n2" }, force: true },
    { change: { type: "update", id: "n2", address: "10.0.1.2:7400", priority: 50 }, force: false },
    { change: { type: "update", id: "n4", role: "witness" }, force: false },
  ]);
  const held = cluster.membership.nodes.map((n) => [n.id, n.address, n.role, n.priority, n.voting]);
  assert.deepEqual(held, [
    ["n1", "10.0.0.1:7400", "member", 100, true],
    ["n2", "10.0.1.2:7400", "member", 50, false],
    ["n4", "10.0.0.4:7400", "witness", 100, true],
  ]);
  const again = await send("DELETE", "/api/v1/members/n3");
  assert.equal(again.status, 409);
  assert.deepEqual(again.json().error, {
    code: "membership_refused",
    message: "n3 is not in the membership",
  });
});

test("members api: malformed requests are refused with a reason and never reach the cluster", async (t) => {
  const { cluster, base } = await startMembersApi(t);
  const cases: Array<[string, string, Record<string, string>, string | undefined, number, RegExp]> = [
    ["POST", "/api/v1/members", json, '{"id":"N1!","address":"10.0.0.9:7400"}', 400, /^id: expected 1-63/],
    [
      "POST",
      "/api/v1/members",
      json,
      '{"id":"n9","address":"10.0.0.9"}',
      400,
      /^address: expected host:port/,
    ],
    ["POST", "/api/v1/members", json, '{"id":"n9","address":"[zz]:1"}', 400, /^address: expected an IPv6/],
    ["POST", "/api/v1/members", json, '{"id":"n9","address":"a:1","voting":true}', 400, /voting/],
    ["POST", "/api/v1/members", json, '{"id":"n9","address":"a:1","priority":1001}', 400, /^priority: /],
    ["POST", "/api/v1/members", json, "{not json", 400, /not valid JSON/],
    ["POST", "/api/v1/members", {}, '{"id":"n9","address":"a:1"}', 415, /Content-Type: application\/json/],
    [
      "POST",
      "/api/v1/members",
      json,
      JSON.stringify({ id: "n9", address: "a:1", x: "y".repeat(5000) }),
      413,
      /larger/,
    ],
    ["POST", "/api/v1/members/n2/promote", {}, undefined, 415, /Content-Type/],
    ["POST", "/api/v1/members/n2/promote", json, '{"force":true}', 400, /force/],
    ["POST", "/api/v1/members/n2/retire", json, undefined, 400, /unknown member action/],
    ["POST", "/api/v1/members/n2", json, undefined, 405, /promote or demote/],
    ["DELETE", "/api/v1/members/n2/promote", json, undefined, 400, /promote is a POST/],
    ["DELETE", "/api/v1/members/N%202", json, undefined, 400, /invalid node id "N 2"/],
    ["DELETE", "/api/v1/members/%E0%A4%A", json, undefined, 400, /percent-encoding/],
    ["DELETE", "/api/v1/members/n2?force=yes", json, undefined, 400, /force must be true or false/],
    ["PATCH", "/api/v1/members/n2", json, "{}", 400, /at least one of address, priority, role/],
    ["PATCH", "/api/v1/members/n2", json, '{"role":"leader"}', 400, /^role: /],
  ];
  for (const [method, path, headers, body, status, message] of cases) {
    const answer = await rawRequest(base, method, path, { headers, ...(body === undefined ? {} : { body }) });
    const label = `${method} ${path} ${body ?? ""}`.slice(0, 100);
    assert.equal(answer.status, status, label);
    assert.match(answer.json().error?.message ?? "", message, label);
  }
  assert.deepEqual(cluster.changes, []);
});

test("members api: each refusal maps to its status, code and the cluster's reason", async (t) => {
  const { cluster, base } = await startMembersApi(t);
  const expected: Array<[ChangeOutcome, number, string]> = [
    [
      { ok: false, refusal: "unsafe", reason: "only 1 of 3 voters healthy; repeat with --force" },
      409,
      "membership_unsafe",
    ],
    [{ ok: false, refusal: "refused", reason: "n9 is not in the membership" }, 409, "membership_refused"],
    [{ ok: false, refusal: "no-leader", reason: "no leader is known" }, 503, "unavailable"],
    [{ ok: false, refusal: "not-leader", reason: "not the leader" }, 503, "unavailable"],
    [{ ok: false, refusal: "uncertain", reason: "v8 not yet held by a quorum" }, 504, "membership_uncertain"],
  ];
  for (const [outcome, status, code] of expected) {
    cluster.answers.set("remove", outcome);
    const answer = await rawRequest(base, "DELETE", "/api/v1/members/n3");
    assert.equal(answer.status, status, code);
    assert.deepEqual(answer.json().error, { code, message: outcome.ok ? "" : outcome.reason });
    assert.equal(answer.headers["retry-after"], status === 503 ? "1" : undefined);
  }
});

test("members api: the ACL guards the routes like every other", async (t) => {
  const acl = [
    { path: "^/api/v1/members$", cn: "^ops-" },
    { path: "^/api/v1/members/", cn: "^admin-" },
  ];
  const { cluster, base } = await startMembersApi(t, acl);
  const as = (cn: string) => ({ ...json, "x-test-cn": cn });
  assert.equal((await rawRequest(base, "GET", "/api/v1/members", { headers: as("ops-alice") })).status, 200);
  const denied = await rawRequest(base, "DELETE", "/api/v1/members/n3", { headers: as("ops-alice") });
  assert.equal(denied.status, 403);
  assert.deepEqual(cluster.changes, []);
  assert.equal(
    (await rawRequest(base, "DELETE", "/api/v1/members/n3", { headers: as("admin-bob") })).status,
    200,
  );
  assert.equal(cluster.changes.length, 1);
});
