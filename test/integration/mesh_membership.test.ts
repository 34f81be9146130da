// The mesh following membership changes over real loopback links: peers added, removed and moved by
// setPeers, guests admitted by admitUnknown (a joining node accepts the leader's link), removed nodes
// refused with a reason they log, and the membership summary each side announces in its hello.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, it } from "node:test";
import { pino } from "pino";
import {
  type MembershipSummary,
  Mesh,
  type MeshLimits,
  type MeshOptions,
  type MeshPeer,
} from "../../src/mesh/index.ts";
import { type PortRange, reservePortRange } from "../support/free_ports.ts";

const PSK = randomBytes(32);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Fast redials, so that refusals repeat and moves are followed quickly. */
const FAST_LIMITS: Partial<MeshLimits> = {
  reconnectDelayMsMin: 20,
  reconnectDelayMsMax: 200,
  handshakeTimeoutMs: 1000,
};

interface LogEntry {
  msg: string;
  peer?: string;
  reason?: string;
  [key: string]: unknown;
}

interface Node {
  mesh: Mesh;
  entries: LogEntry[];
  /** Log lines with this message, about this peer. */
  logged(msg: string, peer: string): LogEntry[];
}

/** Meshes on one reserved port range: node i listens on base + 10 i; base + 10 i + 1 is reserved and dead. */
class Meshes {
  private readonly range: PortRange;
  private readonly ids: string[];
  private readonly running: Mesh[] = [];

  private constructor(range: PortRange, ids: string[]) {
    this.range = range;
    this.ids = ids;
  }

  static async create(ids: string[]): Promise<Meshes> {
    return new Meshes(await reservePortRange(ids.length), ids);
  }

  port(id: string): number {
    const index = this.ids.indexOf(id);
    assert.ok(index >= 0, `${id} is a test node`);
    return this.range.base + index * 10;
  }

  peer(id: string): MeshPeer {
    return { id, address: `127.0.0.1:${this.port(id)}` };
  }

  /** An address in our range where nothing listens: dials to it fail at once. */
  deadPeer(id: string): MeshPeer {
    return { id, address: `127.0.0.1:${this.port(id) + 1}` };
  }

  async start(id: string, peers: MeshPeer[], extra: Partial<MeshOptions> = {}): Promise<Node> {
    const entries: LogEntry[] = [];
    const stream = { write: (line: string) => entries.push(JSON.parse(line) as LogEntry) };
    const mesh = await Mesh.start({
      selfId: id,
      clusterName: "membership-test",
      listenHost: "127.0.0.1",
      listenPort: this.port(id),
      peers,
      security: { mode: "psk", key: PSK },
      logger: pino({ level: "debug" }, stream),
      limits: FAST_LIMITS,
      ...extra,
    });
    mesh.onRequest("echo", (_from, payload) => payload);
    this.running.push(mesh);
    const logged = (msg: string, peer: string) => entries.filter((e) => e.msg === msg && e.peer === peer);
    return { mesh, entries, logged };
  }

  async dispose(): Promise<void> {
    await Promise.all(this.running.map((mesh) => mesh.close()));
    this.range.release();
  }
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function status(mesh: Mesh, peer: string) {
  return mesh.peers().find((p) => p.id === peer);
}

function linked(mesh: Mesh, peer: string): boolean {
  return status(mesh, peer)?.connected === true;
}

async function assertEcho(from: Mesh, to: string): Promise<void> {
  const answer = await from.request(to, "echo", encoder.encode(`${from.selfId} to ${to}`));
  assert.equal(decoder.decode(answer), `${from.selfId} to ${to}`);
}

describe("mesh: membership", { timeout: 180_000 }, () => {
  const all: Meshes[] = [];
  after(() => Promise.all(all.map((meshes) => meshes.dispose())));
  async function meshes(ids: string[]): Promise<Meshes> {
    const created = await Meshes.create(ids);
    all.push(created);
    return created;
  }

  it("mesh: membership: a third mesh is refused until setPeers on the running two adds it", async () => {
    const m = await meshes(["n1", "n2", "n3"]);
    const [n1, n2] = await Promise.all([m.start("n1", [m.peer("n2")]), m.start("n2", [m.peer("n1")])]);
    await waitFor("n1-n2 link", () => linked(n1.mesh, "n2"));
    const n3 = await m.start("n3", [m.peer("n1"), m.peer("n2")]);
    await waitFor("n3 refused by both", () =>
      ["n1", "n2"].every((id) =>
        n3
          .logged("mesh dial failed", id)
          .some((e) => /refused by peer: node n3 is not a member/.test(String(e.reason))),
      ),
    );
    assert.equal(status(n1.mesh, "n3"), undefined, "a refused node gets no slot");

    const members = [m.peer("n1"), m.peer("n2"), m.peer("n3")];
    n1.mesh.setPeers(members);
    n2.mesh.setPeers(members);
    await waitFor("all linked", () =>
      [n1, n2, n3].every((node) =>
        ["n1", "n2", "n3"].every((id) => id === node.mesh.selfId || linked(node.mesh, id)),
      ),
    );
    await assertEcho(n1.mesh, "n3");
    await assertEcho(n3.mesh, "n2");
    assert.equal(n1.logged("mesh peer added", "n3").length, 1);
    n1.mesh.setPeers(members);
    assert.equal(n1.logged("mesh peer added", "n3").length, 1, "the same set changes nothing");
  });

  it("mesh: membership: a removed peer's link closes, it is not redialed, and its redials are refused", async () => {
    const m = await meshes(["n1", "n2", "n3"]);
    const summary = { version: 2, hash: "00c0ffee12345678" };
    const ids = ["n1", "n2", "n3"];
    const nodes = await Promise.all(
      ids.map((id) =>
        m.start(
          id,
          ids.filter((other) => other !== id).map((other) => m.peer(other)),
          { membership: () => summary },
        ),
      ),
    );
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    await waitFor("all linked", () => nodes.every((node) => node.mesh.peers().every((p) => p.connected)));
    const downs: string[] = [];
    n1.mesh.on("link:down", (peer, reason) => downs.push(`${peer}: ${reason}`));
    const n3Downs: string[] = [];
    n3.mesh.on("link:down", (peer, reason) => n3Downs.push(`${peer}: ${reason}`));

    summary.version = 3;
    n1.mesh.setPeers([m.peer("n2")]);
    n2.mesh.setPeers([m.peer("n1")]);
    assert.deepEqual(downs, ["n3: removed from the cluster membership"]);
    assert.equal(status(n1.mesh, "n3"), undefined);
    assert.equal(n1.mesh.send("n3", "note", new Uint8Array()), "no-link");
    await waitFor("n3 hears why", () => n3Downs.length === 2);
    for (const down of n3Downs) assert.match(down, /4009 removed from the cluster membership/);

    // n3 still lists both and keeps dialing; each refusal names the membership it is not part of. Were n1
    // or n2 dialing n3, n3 would accept (they are its peers) and a link would show up.
    const refusedBy = (id: string) =>
      n3.entries.filter(
        (e) =>
          e.msg === "mesh dial failed" &&
          e.peer === id &&
          /refused by peer: node n3 is not a member of membership v3/.test(String(e.reason)),
      ).length;
    await waitFor("n3 refused again and again", () => refusedBy("n1") + refusedBy("n2") >= 3);
    await waitFor("n1 refused n3 three times", () => n1.logged("mesh link refused", "n3").length >= 3);
    assert.ok(!linked(n3.mesh, "n1") && !linked(n3.mesh, "n2"));
    assert.equal(status(n1.mesh, "n3"), undefined);
    assert.equal(status(n2.mesh, "n3"), undefined);
    assert.equal(downs.length, 1);
    await assertEcho(n1.mesh, "n2");
  });

  it("mesh: membership: a new address is dialed; a connected link survives an address change", async () => {
    const m = await meshes(["n1", "n2"]);
    const [n1, n2] = await Promise.all([
      m.start("n1", [m.deadPeer("n2")]),
      m.start("n2", [m.deadPeer("n1")]),
    ]);
    await waitFor("n1 failed to dial the old address", () => n1.logged("mesh dial failed", "n2").length > 0);
    assert.equal(n1.logged("mesh dial failed", "n2")[0]?.address, m.deadPeer("n2").address);

    n1.mesh.setPeers([m.peer("n2")]);
    await waitFor("linked at the new address", () => linked(n1.mesh, "n2"));
    assert.equal(status(n1.mesh, "n2")?.dialer, "n1", "n2 still dials a dead address: n1's dial made it");
    assert.equal(status(n1.mesh, "n2")?.address, m.peer("n2").address);
    assert.deepEqual(
      n1.logged("mesh peer address changed", "n2").map((e) => [e.previousAddress, e.address]),
      [[m.deadPeer("n2").address, m.peer("n2").address]],
    );

    const downs: string[] = [];
    n1.mesh.on("link:down", (peer) => downs.push(peer));
    n1.mesh.setPeers([m.deadPeer("n2")]);
    assert.equal(status(n1.mesh, "n2")?.address, m.deadPeer("n2").address);
    await assertEcho(n1.mesh, "n2");
    await assertEcho(n2.mesh, "n1");
    assert.deepEqual(downs, [], "the connected link stays");
  });

  it("mesh: membership: an admitted unknown dialer is a guest; others are refused with a reason", async () => {
    const m = await meshes(["n1", "n2", "n3"]);
    const admitted = new Set(["n2"]);
    const n1 = await m.start("n1", [], { admitUnknown: (id) => admitted.has(id) });
    const n2 = await m.start("n2", [m.peer("n1")]);
    await waitFor("n2 linked to n1", () => linked(n2.mesh, "n1"));
    await waitFor("n1 lists its guest", () => linked(n1.mesh, "n2"));
    assert.equal(status(n1.mesh, "n2")?.address, "", "a guest has no address");
    assert.equal(n1.logged("mesh guest admitted", "n2").length, 1);
    await assertEcho(n1.mesh, "n2");
    await assertEcho(n2.mesh, "n1");
    const framesBefore = n1.mesh.framesReceived("n2");
    for (let i = 0; i < 10; i++) assert.equal(n2.mesh.send("n1", "note", encoder.encode(String(i))), "sent");
    await waitFor("a guest's frames counted", () => n1.mesh.framesReceived("n2") - framesBefore >= 10);

    const n3 = await m.start("n3", [m.peer("n1")]);
    await waitFor("n3 refused with a reason", () =>
      n3
        .logged("mesh dial failed", "n1")
        .some((e) => /refused by peer: node n3 is not a member/.test(String(e.reason))),
    );
    assert.equal(status(n1.mesh, "n3"), undefined);

    // Left out of the set but still admitted: stays a guest, link and all.
    const downs: string[] = [];
    n1.mesh.on("link:down", (peer, reason) => downs.push(`${peer}: ${reason}`));
    n1.mesh.setPeers([]);
    assert.ok(linked(n1.mesh, "n2"));
    // Named in the set: the guest becomes a peer with an address, on the same link.
    n1.mesh.setPeers([m.peer("n2")]);
    assert.equal(status(n1.mesh, "n2")?.address, m.peer("n2").address);
    assert.equal(n1.logged("mesh peer added", "n2").length, 1);
    // Left out and no longer admitted: dropped, and its link closed.
    admitted.delete("n2");
    n1.mesh.setPeers([]);
    assert.deepEqual(downs, ["n2: removed from the cluster membership"]);
    assert.deepEqual(n1.mesh.peers(), []);
    await waitFor("n2 refused on redial", () =>
      n2
        .logged("mesh dial failed", "n1")
        .some((e) => /refused by peer: node n2 is not a member/.test(String(e.reason))),
    );
  });

  it("mesh: membership: a guest is asked again at each hello: once no longer admitted, it is refused", async () => {
    const m = await meshes(["n1", "n2"]);
    const admitted = new Set(["n2"]);
    const n1 = await m.start("n1", [], { admitUnknown: (id) => admitted.has(id) });
    const first = await m.start("n2", [m.peer("n1")]);
    await waitFor("guest linked", () => linked(n1.mesh, "n2"));
    admitted.delete("n2");
    await first.mesh.close();
    await waitFor("guest link down", () => !linked(n1.mesh, "n2"));
    const restarted = await m.start("n2", [m.peer("n1")]);
    await waitFor("the restarted guest is refused", () =>
      restarted
        .logged("mesh dial failed", "n1")
        .some((e) => /refused by peer: node n2 is not a member/.test(String(e.reason))),
    );
    assert.equal(linked(n1.mesh, "n2"), false);
    assert.equal(status(n1.mesh, "n2")?.address, "", "listed until a setPeers leaves it out");
    n1.mesh.setPeers([]);
    assert.deepEqual(n1.mesh.peers(), []);
  });

  it("mesh: membership: each side's summary travels in the hello and shows in peers() at link up", async () => {
    const m = await meshes(["n1", "n2", "n3"]);
    const v7: MembershipSummary = { version: 7, hash: "00c0ffee12345678" };
    let n2Summary: MembershipSummary = { version: 6, hash: "0123456789abcdef" };
    const seenAtUp: Array<MembershipSummary | undefined> = [];
    const n1 = await m.start("n1", [m.peer("n2"), m.peer("n3")], { membership: () => v7 });
    n1.mesh.on("link:up", (peer) => {
      if (peer === "n2") seenAtUp.push(status(n1.mesh, "n2")?.membership);
    });
    // Only n1 dials (the others know a dead address for it), so no late duplicate can overwrite a summary.
    const n2 = await m.start("n2", [m.deadPeer("n1")], { membership: () => n2Summary });
    const n3 = await m.start("n3", [m.deadPeer("n1")]);
    await waitFor("links", () => linked(n1.mesh, "n2") && linked(n1.mesh, "n3"));
    assert.deepEqual(seenAtUp, [{ version: 6, hash: "0123456789abcdef" }]);
    assert.deepEqual(status(n2.mesh, "n1")?.membership, v7);
    assert.equal(status(n1.mesh, "n3")?.membership, undefined, "n3 announces none");
    assert.deepEqual(status(n3.mesh, "n1")?.membership, v7);
    assert.ok(
      n1.logged("mesh link up", "n2").some((e) => (e.peerMembership as MembershipSummary)?.version === 6),
    );

    // Read at each hello: a renewed link carries the summary of its moment.
    n2Summary = { version: 7, hash: "00c0ffee12345678" };
    const renewed: string[] = [];
    n1.mesh.on("link:renewed", (peer) => renewed.push(peer));
    await waitFor("n1 renews", () => n1.mesh.renew("n2", Date.now() + 1));
    await waitFor("renewed", () => renewed.includes("n2"));
    assert.deepEqual(status(n1.mesh, "n2")?.membership, v7);
  });
});
