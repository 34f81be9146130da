import assert from "node:assert/strict";
import { test } from "node:test";
import { renderStatus, type StatusDocument } from "../../../src/cli/status_table.ts";

const status: StatusDocument = {
  node: {
    id: "n1",
    role: "member",
    priority: 100,
    cluster: "prod",
    address: "10.0.0.1:7400",
    version: "0.1.0",
    uptimeMs: 5,
  },
  leaderId: "n2",
  term: 7,
  role: "follower",
  leaseValid: false,
  peers: [
    {
      id: "n2",
      address: "10.0.0.2:7400",
      role: "member",
      priority: 100,
      state: "alive",
      link: "up",
      rttMs: 0.42,
      lastHeardMsAgo: 120,
    },
    {
      id: "n3",
      address: "10.0.0.3:7400",
      role: "witness",
      priority: 100,
      state: "down",
      link: "down",
      rttMs: null,
      lastHeardMsAgo: null,
    },
  ],
};

test("status table: header names the leader and term; one aligned row per peer, the leader starred", () => {
  const lines = renderStatus(status).trimEnd().split("\n");
  assert.match(lines[0]!, /node\s+n1 \(member, priority 100\) at 10\.0\.0\.1:7400, cluster prod/);
  assert.match(lines[1]!, /leader\s+n2\s+term 7\s+this node: follower/);
  assert.match(lines[3]!, /^PEER\s+ROLE\s+PRIORITY\s+STATE\s+LINK\s+RTT/);
  assert.match(lines[4]!, /^n2 \*\s+member\s+100\s+alive\s+up\s+0\.42 ms\s+120 ms ago\s+10\.0\.0\.2:7400$/);
  assert.match(lines[5]!, /^n3\s+witness\s+100\s+down\s+down\s+-\s+never/);
  assert.equal(lines[4]!.indexOf("alive"), lines[5]!.indexOf("down"), "columns align");
});

test("status table: a leader shows whether its lease is valid", () => {
  assert.match(
    renderStatus({ ...status, leaderId: "n1", role: "leader", leaseValid: true }),
    /this node: leader \(lease valid\)/,
  );
});

test("status table: the membership line, how tandem.yml differs, and peers refusing a removed node", () => {
  const text = renderStatus({
    ...status,
    membership: {
      standing: "voter",
      version: 7,
      committedVersion: 6,
      pendingVersion: 7,
      configDrift: ["n9 is configured but not in membership v7"],
      refusedBy: [{ peer: "n2", reason: "refused by peer: node n1 is not a member of membership v9" }],
    },
  });
  assert.match(text, /members v7 \(committed v6, v7 pending\)\s+this node: voter/);
  assert.match(text, /warning n2 refuse this node as not in their membership: it was removed/);
  assert.match(text, /tandem\.yml differs[^\n]*\n\s+- n9 is configured but not in membership v7/);
  assert.doesNotMatch(renderStatus(status), /members|warning/, "agents older than membership print no line");
});
