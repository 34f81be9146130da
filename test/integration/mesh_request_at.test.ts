// Mesh.requestAt over real loopback links: one request to a node known only by its address, as a node
// joining with `tandem agent --join ADDRESS` asks the member it was pointed at. The answerer's id is what
// TLS and the hello prove; the far end admits the caller as it admits any dialer; every failure comes back
// as a typed rejection with its reason.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, it } from "node:test";
import { pino } from "pino";
import {
  HandshakeError,
  Mesh,
  type MeshOptions,
  type MeshSecurity,
  PeerUnreachableError,
  RemoteError,
  TimeoutError,
} from "../../src/mesh/index.ts";
import { createClusterCa, issueCertificate, type PemPair } from "../../src/pki/index.ts";
import { type PortRange, reservePortRange } from "../support/free_ports.ts";

const CLUSTER = "request-at-test";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface LogEntry {
  msg: string;
  [key: string]: unknown;
}

interface Node {
  mesh: Mesh;
  entries: LogEntry[];
}

type Mode = "psk" | "mtls";

/** The credentials of one test's nodes: a shared key, or node certificates from one CA. */
class Credentials {
  private readonly psk = randomBytes(32);
  /** Made by the first call; the ones that start meanwhile wait for the same CA. */
  private ca: Promise<PemPair> | null = null;

  async security(mode: Mode, id: string): Promise<MeshSecurity> {
    if (mode === "psk") return { mode, key: this.psk };
    this.ca ??= createClusterCa({ commonName: "test-ca", validDays: 1 });
    const ca = await this.ca;
    return certificateSecurity(ca, await issueCertificate(ca, node(id)));
  }
}

function node(commonName: string) {
  return { commonName, kind: "node" as const, validDays: 1 };
}

function certificateSecurity(ca: PemPair, pair: PemPair): MeshSecurity {
  return { mode: "mtls", caCertPem: ca.certPem, certPem: pair.certPem, keyPem: pair.keyPem };
}

/** Meshes on one reserved port range; each answers "echo" with its payload. */
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

  address(id: string): string {
    const index = this.ids.indexOf(id);
    assert.ok(index >= 0, `${id} is a test node`);
    return `127.0.0.1:${this.range.base + index * 10}`;
  }

  /** In our range, where nothing listens. */
  deadAddress(id: string): string {
    return this.address(id).replace(/\d+$/, (port) => String(Number(port) + 1));
  }

  async start(id: string, options: Partial<MeshOptions> & Pick<MeshOptions, "security">): Promise<Node> {
    const entries: LogEntry[] = [];
    const stream = { write: (line: string) => entries.push(JSON.parse(line) as LogEntry) };
    const mesh = await Mesh.start({
      selfId: id,
      clusterName: CLUSTER,
      listenHost: "127.0.0.1",
      listenPort: Number(this.address(id).split(":")[1]),
      peers: [],
      logger: pino({ level: "debug" }, stream),
      limits: { reconnectDelayMsMin: 20, reconnectDelayMsMax: 200, handshakeTimeoutMs: 1000 },
      ...options,
    });
    mesh.onRequest("echo", (_from, payload) => payload);
    this.running.push(mesh);
    return { mesh, entries };
  }

  /** n1 and n2, each the other's peer, once linked; `n1Extra` goes to n1's options. */
  async linkedPair(mode: Mode, credentials: Credentials, n1Extra: Partial<MeshOptions> = {}) {
    const peered = async (id: string, other: string, extra: Partial<MeshOptions> = {}) =>
      this.start(id, {
        security: await credentials.security(mode, id),
        peers: [{ id: other, address: this.address(other) }],
        ...extra,
      });
    // n2 first, so its first dial finds nobody listening and n1's dial, the one the duplicate-link rule
    // keeps (the lower id's), brings the link up. Settled once both ends hold that link: a link n2 dialed
    // could still be replaced by n1's dial in flight, a "link:renewed" the tests would see.
    const n2 = await peered("n2", "n1");
    const n1 = await peered("n1", "n2", n1Extra);
    const settled = (mesh: Mesh, peer: string) =>
      linked(mesh, peer) && mesh.peers().find((p) => p.id === peer)?.dialer === "n1";
    await waitFor("n1-n2 link", () => settled(n1.mesh, "n2") && settled(n2.mesh, "n1"));
    return { n1, n2 };
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

function linked(mesh: Mesh, peer: string): boolean {
  return mesh.peers().find((p) => p.id === peer)?.connected === true;
}

/** Link events of both meshes, as "n1: down n2". */
function linkEvents(...meshes: Mesh[]): string[] {
  const events: string[] = [];
  for (const mesh of meshes) {
    const note = (event: string) => (peer: string) => events.push(`${mesh.selfId}: ${event} ${peer}`);
    mesh.on("link:up", note("link:up"));
    mesh.on("link:down", note("link:down"));
    mesh.on("link:renewed", note("link:renewed"));
  }
  return events;
}

/** Rejects with `type`, its message matching `reason`. */
async function assertFails(call: Promise<unknown>, type: new (...args: never[]) => Error, reason: RegExp) {
  await assert.rejects(call, (error) => {
    assert.ok(error instanceof type, `${String(error)} is a ${type.name}`);
    assert.match(error.message, reason);
    return true;
  });
}

describe("mesh: requestAt", { timeout: 180_000 }, () => {
  const all: Meshes[] = [];
  after(() => Promise.all(all.map((meshes) => meshes.dispose())));
  async function meshes(ids: string[]): Promise<Meshes> {
    const created = await Meshes.create(ids);
    all.push(created);
    return created;
  }

  for (const mode of ["psk", "mtls"] as const) {
    it(`mesh: requestAt: ${mode}: a node in no peer set is answered by an admitting member`, async () => {
      const m = await meshes(["n1", "n2", "n4"]);
      const credentials = new Credentials();
      const asked: string[] = [];
      const admitUnknown = (id: string) => {
        asked.push(id);
        return id === "n4";
      };
      const { n1 } = await m.linkedPair(mode, credentials, { admitUnknown });
      const n4 = await m.start("n4", { security: await credentials.security(mode, "n4") });

      const answer = await n4.mesh.requestAt(m.address("n1"), "echo", encoder.encode("join me"));
      assert.equal(answer.peer, "n1");
      assert.equal(decoder.decode(answer.response), "join me");
      assert.deepEqual(asked, ["n4"], "n1 asked admitUnknown about n4 at its hello");
      assert.deepEqual(n4.mesh.peers(), [], "the caller made no slot");
      const logged = n4.entries.filter((e) => e.msg.startsWith("mesh request to an address"));
      assert.deepEqual(
        logged.map((e) => [e.msg, e.address, e.peer, e.channel]),
        [["mesh request to an address answered", m.address("n1"), "n1", "echo"]],
      );
      await waitFor("the one-request link closed", () =>
        n1.entries.some(
          (e) => e.msg === "mesh link down" && e.peer === "n4" && /4010/.test(String(e.reason)),
        ),
      );
      assert.equal(linked(n1.mesh, "n4"), false);
      assert.ok(linked(n1.mesh, "n2"), "n1's peer link is untouched");
    });

    it(`mesh: requestAt: ${mode}: a refusal by admitUnknown comes back with its reason`, async () => {
      const m = await meshes(["n1", "n4"]);
      const credentials = new Credentials();
      await m.start("n1", {
        security: await credentials.security(mode, "n1"),
        admitUnknown: () => false,
        membership: () => ({ version: 3, hash: "00c0ffee" }),
      });
      const n4 = await m.start("n4", { security: await credentials.security(mode, "n4") });
      await assertFails(
        n4.mesh.requestAt(m.address("n1"), "echo", new Uint8Array()),
        HandshakeError,
        /refused by peer: node n4 is not a member of membership v3/,
      );
      assert.ok(n4.entries.some((e) => e.msg === "mesh request to an address failed" && e.peer === null));
    });

    it(`mesh: requestAt: ${mode}: a peer asking at a peer's address uses its link and leaves it be`, async () => {
      const m = await meshes(["n1", "n2"]);
      const { n1, n2 } = await m.linkedPair(mode, new Credentials());
      const before = [n1.mesh.peers(), n2.mesh.peers()];
      const events = linkEvents(n1.mesh, n2.mesh);
      // Both ways: whichever end dialed the link, a new one could have replaced it at one end or the other.
      for (const [from, to] of [
        [n2, "n1"],
        [n1, "n2"],
      ] as const) {
        const answer = await from.mesh.requestAt(m.address(to), "echo", encoder.encode("hi"));
        assert.deepEqual([answer.peer, decoder.decode(answer.response)], [to, "hi"]);
      }
      assert.deepEqual(events, []);
      assert.deepEqual([n1.mesh.peers(), n2.mesh.peers()], before);
    });
  }

  it("mesh: requestAt: a peer reached by another spelling of its address keeps one agreed link", async () => {
    const m = await meshes(["n1", "n2"]);
    const { n1, n2 } = await m.linkedPair("psk", new Credentials());
    const events = linkEvents(n1.mesh, n2.mesh);
    // 127.1 is 127.0.0.1 to the dialer, but not the address either slot holds: the new link goes to the
    // slot as any dialed link, and the duplicate-link rule keeps the same one at both ends.
    for (const [from, to] of [
      [n2, "n1"],
      [n1, "n2"],
    ] as const) {
      const address = m.address(to).replace("127.0.0.1", "127.1");
      const answer = await from.mesh.requestAt(address, "echo", encoder.encode("hi"));
      assert.deepEqual([answer.peer, decoder.decode(answer.response)], [to, "hi"]);
    }
    assert.deepEqual(
      events.filter((event) => !event.includes("link:renewed")),
      [],
      "the peers stayed linked throughout",
    );
    const dialer = (mesh: Mesh, peer: string) => mesh.peers().find((p) => p.id === peer)?.dialer;
    await waitFor("one agreed link", () => dialer(n1.mesh, "n2") === dialer(n2.mesh, "n1"));
    assert.equal(decoder.decode(await n1.mesh.request("n2", "echo", encoder.encode("after"))), "after");
  });

  it("mesh: requestAt: an address where nothing listens is unreachable", async () => {
    const m = await meshes(["n1", "n4"]);
    const n4 = await m.start("n4", { security: await new Credentials().security("psk", "n4") });
    await assertFails(
      n4.mesh.requestAt(m.deadAddress("n1"), "echo", new Uint8Array()),
      PeerUnreachableError,
      /ECONNREFUSED/,
    );
  });

  it("mesh: requestAt: the handler's error is a RemoteError; a handler that never answers times out", async () => {
    const m = await meshes(["n1", "n4"]);
    const credentials = new Credentials();
    const n1 = await m.start("n1", {
      security: await credentials.security("psk", "n1"),
      admitUnknown: () => true,
    });
    n1.mesh.onRequest("join", () => {
      throw new Error("membership change in flight");
    });
    n1.mesh.onRequest("stuck", () => new Promise<Uint8Array>(() => {}));
    const n4 = await m.start("n4", { security: await credentials.security("psk", "n4") });
    await assert.rejects(n4.mesh.requestAt(m.address("n1"), "join", new Uint8Array()), (error) => {
      assert.ok(error instanceof RemoteError);
      assert.equal(error.peer, "n1");
      assert.equal(error.message, "membership change in flight");
      return true;
    });
    await assertFails(
      n4.mesh.requestAt(m.address("n1"), "stuck", new Uint8Array(), { timeoutMs: 300 }),
      TimeoutError,
      /timed out/,
    );
    assert.ok(n4.entries.some((e) => e.msg === "mesh request to an address failed" && e.peer === "n1"));
  });

  it("mesh: requestAt: another cluster's member refuses the hello", async () => {
    const m = await meshes(["n1", "n4"]);
    const credentials = new Credentials();
    await m.start("n1", { security: await credentials.security("psk", "n1"), admitUnknown: () => true });
    const n4 = await m.start("n4", {
      security: await credentials.security("psk", "n4"),
      clusterName: "another-cluster",
    });
    await assertFails(
      n4.mesh.requestAt(m.address("n1"), "echo", new Uint8Array()),
      HandshakeError,
      /cluster name differs/,
    );
  });

  it("mesh: requestAt: mtls: only a node certificate from our CA whose CN says the hello-ok's id", async () => {
    const m = await meshes(["n1", "n2", "n3", "n4"]);
    const ca = await createClusterCa({ commonName: "test-ca", validDays: 1 });
    const rogueCa = await createClusterCa({ commonName: "rogue-ca", validDays: 1 });
    const admitUnknown = () => true;
    // n1 holds a certificate from another CA; n2 answers as n2 with n3's certificate; n3 has a client one.
    await m.start("n1", {
      security: certificateSecurity(rogueCa, await issueCertificate(rogueCa, node("n1"))),
      admitUnknown,
    });
    await m.start("n2", {
      security: certificateSecurity(ca, await issueCertificate(ca, node("n3"))),
      admitUnknown,
    });
    const client = await issueCertificate(ca, { commonName: "n3", kind: "client", validDays: 1 });
    await m.start("n3", { security: certificateSecurity(ca, client), admitUnknown });
    const n4 = await m.start("n4", {
      security: certificateSecurity(ca, await issueCertificate(ca, node("n4"))),
    });

    const ask = (id: string) => n4.mesh.requestAt(m.address(id), "echo", new Uint8Array());
    await assertFails(ask("n1"), HandshakeError, /handshake with .* failed: .*certificate/);
    await assertFails(ask("n2"), HandshakeError, /answer from a different node id/);
    await assertFails(ask("n3"), HandshakeError, /unsuitable certificate purpose|not a node credential/);
  });
});
