// The mesh over real loopback sockets: link dedupe, RPC, messages, reconnects, refusals, mTLS and HTTP.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { request as httpsRequest, type RequestOptions } from "node:https";
import { after, describe, it } from "node:test";
import type { ConnectionOptions } from "node:tls";
import { pino } from "pino";
import { type ClientOptions, WebSocket } from "ws";
import { encodeFrame, FrameKind } from "../../src/mesh/frame.ts";
import { CloseCode } from "../../src/mesh/handshake.ts";
import {
  BackpressureError,
  type ClientIdentity,
  HandshakeError,
  MESH_PATH,
  Mesh,
  type MeshLimits,
  type MeshSecurity,
  PeerUnreachableError,
  RemoteError,
  TimeoutError,
} from "../../src/mesh/index.ts";
import { createClusterCa, issueCertificate, type PemPair } from "../../src/pki/index.ts";
import { Ticker } from "../../src/shell/index.ts";
import { type PortRange, reservePortRange } from "../support/free_ports.ts";

const CLUSTER = "test-cluster";
const PSK = randomBytes(32);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Fast redials and a short handshake so that failure paths finish quickly. */
const FAST_LIMITS: Partial<MeshLimits> = {
  reconnectDelayMsMin: 20,
  reconnectDelayMsMax: 200,
  handshakeTimeoutMs: 1000,
};

interface LogEntry {
  level: number;
  msg: string;
  peer?: string;
  reason?: string;
  [key: string]: unknown;
}

/** A pino logger that keeps its lines in memory, so tests can assert on logged reasons. */
function memoryLogger(): { logger: pino.Logger; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const stream = { write: (line: string) => entries.push(JSON.parse(line) as LogEntry) };
  return { logger: pino({ level: "debug" }, stream), entries };
}

/**
 * Established TCP connections accepted on 127.0.0.1:`port`, from the kernel's table: the links a node's
 * listener holds, duplicates included, whatever the mesh reports.
 */
function acceptedConnections(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const established = "01";
  return readFileSync("/proc/net/tcp", "utf8")
    .split("\n")
    .slice(1)
    .filter((line) => {
      const [, localAddress, , state] = line.trim().split(/\s+/);
      return localAddress === local && state === established;
    }).length;
}

interface Node {
  id: string;
  port: number;
  mesh: Mesh;
  entries: LogEntry[];
}

interface ClusterSpec {
  ids: string[];
  security: (id: string) => MeshSecurity;
  limits?: Partial<MeshLimits>;
  httpHandler?: (req: IncomingMessage, res: ServerResponse, identity: ClientIdentity) => void;
  ticker?: Ticker;
}

class TestCluster {
  readonly nodes = new Map<string, Node>();
  readonly ports = new Map<string, number>();
  private readonly spec: ClusterSpec;
  private readonly portRange: PortRange;

  private constructor(spec: ClusterSpec, portRange: PortRange) {
    this.spec = spec;
    this.portRange = portRange;
    for (const [index, id] of spec.ids.entries()) this.ports.set(id, portRange.base + index * 10);
  }

  /**
   * Ports are known before any mesh starts (every mesh needs its peers' addresses) and reserved below the
   * ephemeral range, so a mesh restarted on its port finds it free.
   */
  static async create(spec: ClusterSpec, only?: string[]): Promise<TestCluster> {
    const cluster = new TestCluster(spec, await reservePortRange(spec.ids.length));
    await Promise.all((only ?? spec.ids).map((id) => cluster.start(id)));
    return cluster;
  }

  async start(id: string, security?: MeshSecurity): Promise<Node> {
    const { logger, entries } = memoryLogger();
    const port = this.ports.get(id) as number;
    const mesh = await Mesh.start({
      selfId: id,
      clusterName: CLUSTER,
      listenHost: "127.0.0.1",
      listenPort: port,
      peers: this.spec.ids.map((peer) => ({ id: peer, address: `127.0.0.1:${this.ports.get(peer)}` })),
      security: security ?? this.spec.security(id),
      logger,
      limits: { ...FAST_LIMITS, ...this.spec.limits },
      ...(this.spec.httpHandler === undefined ? {} : { httpHandler: this.spec.httpHandler }),
      ...(this.spec.ticker === undefined ? {} : { ticker: this.spec.ticker }),
    });
    const node = { id, port, mesh, entries };
    this.nodes.set(id, node);
    return node;
  }

  node(id: string): Node {
    const node = this.nodes.get(id);
    assert.ok(node, `node ${id} is running`);
    return node;
  }

  mesh(id: string): Mesh {
    return this.node(id).mesh;
  }

  async stop(id: string): Promise<void> {
    await this.node(id).mesh.close();
    this.nodes.delete(id);
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((node) => node.mesh.close()));
    this.nodes.clear();
    this.portRange.release();
  }
}

/** Polls a condition on real sockets; bounded so a broken build fails instead of hanging, generous for load. */
async function waitFor(what: string, condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function linkStatus(mesh: Mesh, peer: string) {
  const status = mesh.peers().find((p) => p.id === peer);
  assert.ok(status, `${mesh.selfId} knows ${peer}`);
  return status;
}

function fullyLinked(cluster: TestCluster, ids: string[]): boolean {
  return ids.every((a) => ids.every((b) => a === b || linkStatus(cluster.mesh(a), b).connected));
}

const pskSecurity = (): MeshSecurity => ({ mode: "psk", key: PSK });

/** A bare ws client that completes TLS-PSK as `identity` and then does whatever the test says. */
function rawPskClient(port: number, identity: string, extra: ClientOptions = {}): WebSocket {
  const options = {
    pskCallback: () => ({ psk: PSK, identity }),
    ciphers: "TLS_AES_128_GCM_SHA256",
    minVersion: "TLSv1.3",
    checkServerIdentity: () => undefined,
    ...extra,
  } as unknown as ClientOptions;
  return new WebSocket(`wss://127.0.0.1:${port}${MESH_PATH}`, options);
}

function closeOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) =>
    ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })),
  );
}

function opened(ws: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
}

function hello(overrides: Record<string, unknown>): Buffer {
  const body = {
    protocolVersionMin: 1,
    protocolVersionMax: 1,
    nodeId: "n2",
    clusterName: CLUSTER,
    bootId: "raw-client",
    ...overrides,
  };
  return encodeFrame({
    kind: FrameKind.Hello,
    requestId: 0,
    channel: "",
    payload: encoder.encode(JSON.stringify(body)),
  });
}

async function assertServesPeers(cluster: TestCluster, from: string, to: string): Promise<void> {
  const answer = await cluster.mesh(from).request(to, "echo", encoder.encode("still here"));
  assert.equal(decoder.decode(answer), "still here");
}

describe("mesh: psk links", { timeout: 180_000 }, () => {
  const clusters: TestCluster[] = [];
  after(() => Promise.all(clusters.map((c) => c.dispose())));

  it("mesh: psk: three nodes dialing at once end with one agreed link per pair", async () => {
    const ids = ["n1", "n2", "n3"];
    const cluster = await TestCluster.create({ ids, security: pskSecurity });
    clusters.push(cluster);
    const ups = new Map<string, number>();
    for (const id of ids)
      cluster
        .mesh(id)
        .on("link:up", (peer) => ups.set(`${id}->${peer}`, (ups.get(`${id}->${peer}`) ?? 0) + 1));
    const agreed = () =>
      fullyLinked(cluster, ids) &&
      ids.every((a) =>
        ids.every(
          (b) => a === b || linkStatus(cluster.mesh(a), b).dialer === linkStatus(cluster.mesh(b), a).dialer,
        ),
      );
    // Both ends dial at once; the duplicates retire (closed by both sides with the same rule) until each
    // pair holds one TCP connection, accepted by the end that did not dial it.
    const oneConnectionPerPair = () =>
      ids.every(
        (a) =>
          acceptedConnections(cluster.ports.get(a) as number) ===
          ids.filter((b) => b !== a && linkStatus(cluster.mesh(a), b).dialer === b).length,
      ) && ids.reduce((sum, id) => sum + acceptedConnections(cluster.ports.get(id) as number), 0) === 3;
    await waitFor("one agreed link per pair", () => agreed() && oneConnectionPerPair());
    for (const a of ids) {
      for (const b of ids) {
        if (a !== b) assert.equal(linkStatus(cluster.mesh(a), b).inflightRequests, 0);
      }
    }
    for (const [edge, count] of ups) assert.ok(count <= 1, `${edge} came up once, not ${count} times`);
  });

  it("mesh: dedupe: requests sent the moment links come up are answered while duplicates retire", async () => {
    const ids = ["n1", "n2", "n3"];
    let replaced = 0;
    // At least 5 rounds; more until a duplicate was replaced (dial timing decides whether one is).
    for (let round = 0; round < 5 || (replaced === 0 && round < 30); round++) {
      const cluster = await TestCluster.create({ ids, security: pskSecurity });
      clusters.push(cluster);
      const calls: Promise<Uint8Array>[] = [];
      for (const id of ids) {
        const mesh = cluster.mesh(id);
        mesh.onRequest("echo", (_from, payload) => payload);
        mesh.on("link:up", (peer) => {
          for (let i = 0; i < 20; i++) calls.push(mesh.request(peer, "echo", encoder.encode(`${id}${i}`)));
        });
      }
      await waitFor("links", () => fullyLinked(cluster, ids));
      const answers = await Promise.all(calls);
      assert.equal(answers.length, 20 * 6);
      replaced += ids.filter((id) =>
        cluster.node(id).entries.some((e) => e.msg === "mesh link replaced duplicate"),
      ).length;
      await cluster.dispose();
    }
    // Simultaneous dials produce duplicates, so the retire path did run.
    assert.ok(replaced > 0, "some duplicate link was replaced");
  });

  it("mesh: send: a full send queue reports backpressure instead of buffering without bound", async () => {
    const cluster = await TestCluster.create({
      ids: ["n1", "n2"],
      security: pskSecurity,
      limits: { sendQueueFramesMax: 8 },
    });
    clusters.push(cluster);
    const received: number[] = [];
    cluster.mesh("n2").onMessage("bulk", (_from, payload) => received.push(payload.byteLength));
    await waitFor("link", () => fullyLinked(cluster, ["n1", "n2"]));
    const n1 = cluster.mesh("n1");
    const results = Array.from({ length: 20 }, () => n1.send("n2", "bulk", new Uint8Array(10)));
    assert.deepEqual(results, [...Array(8).fill("sent"), ...Array(12).fill("backpressure")]);
    assert.equal(linkStatus(n1, "n2").queuedFrames, 8);
    await assert.rejects(n1.request("n2", "bulk", new Uint8Array()), BackpressureError);
    await waitFor("queue drained", () => linkStatus(n1, "n2").queuedFrames === 0);
    assert.equal(n1.send("n2", "bulk", new Uint8Array(10)), "sent");
    await waitFor("9 messages", () => received.length === 9);
  });

  it("mesh: rpc: 200 requests in flight at once each get their own answer", async () => {
    const cluster = await TestCluster.create({ ids: ["n1", "n2"], security: pskSecurity });
    clusters.push(cluster);
    cluster.mesh("n2").onRequest("double", async (from, payload) => {
      await new Promise((resolve) => setImmediate(resolve));
      return encoder.encode(`${from}:${Number(decoder.decode(payload)) * 2}`);
    });
    await waitFor("link", () => fullyLinked(cluster, ["n1", "n2"]));
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        cluster.mesh("n1").request("n2", "double", encoder.encode(String(i))),
      ),
    );
    for (const [i, answer] of answers.entries()) assert.equal(decoder.decode(answer), `n1:${i * 2}`);
  });

  it("mesh: rpc: remote errors, unknown channels, timeouts and the in-flight bound", async () => {
    const cluster = await TestCluster.create({
      ids: ["n1", "n2"],
      security: pskSecurity,
      limits: { inflightRequestsMax: 4 },
    });
    clusters.push(cluster);
    const n2 = cluster.mesh("n2");
    const stuck: Array<() => void> = [];
    n2.onRequest("fail", () => {
      throw new Error("disk on fire");
    });
    n2.onRequest(
      "stuck",
      () => new Promise<Uint8Array>((resolve) => stuck.push(() => resolve(new Uint8Array()))),
    );
    await waitFor("link", () => fullyLinked(cluster, ["n1", "n2"]));
    const n1 = cluster.mesh("n1");

    await assert.rejects(n1.request("n2", "fail", new Uint8Array()), (error) => {
      assert.ok(error instanceof RemoteError);
      assert.equal(error.message, "disk on fire");
      return true;
    });
    await assert.rejects(n1.request("n2", "nobody-home", new Uint8Array()), RemoteError);
    await assert.rejects(n1.request("n2", "stuck", new Uint8Array(), { timeoutMs: 30 }), TimeoutError);
    await waitFor("timed-out request cleared", () => linkStatus(n1, "n2").inflightRequests === 0);
    for (const release of stuck.splice(0)) release();

    const pending = Array.from({ length: 4 }, () => n1.request("n2", "stuck", new Uint8Array()));
    await assert.rejects(n1.request("n2", "stuck", new Uint8Array()), BackpressureError);
    assert.equal(linkStatus(n1, "n2").inflightRequests, 4);
    await waitFor("handlers running", () => stuck.length === 4);
    for (const release of stuck) release();
    await Promise.all(pending);
    await assert.rejects(n1.request("n3", "stuck", new Uint8Array()), PeerUnreachableError);
  });

  it("mesh: rpc: link loss rejects pending requests with PeerUnreachableError", async () => {
    const cluster = await TestCluster.create({ ids: ["n1", "n2"], security: pskSecurity });
    clusters.push(cluster);
    cluster.mesh("n2").onRequest("stuck", () => new Promise<Uint8Array>(() => {}));
    await waitFor("link", () => fullyLinked(cluster, ["n1", "n2"]));
    const pending = cluster.mesh("n1").request("n2", "stuck", new Uint8Array(), { timeoutMs: 10_000 });
    await waitFor("request in flight", () => linkStatus(cluster.mesh("n1"), "n2").inflightRequests === 1);
    await cluster.stop("n2");
    await assert.rejects(pending, PeerUnreachableError);
  });

  it("mesh: messages: one-way messages arrive in order; no link reports no-link", async () => {
    const cluster = await TestCluster.create({ ids: ["n1", "n3"], security: pskSecurity });
    clusters.push(cluster);
    const received: string[] = [];
    cluster
      .mesh("n3")
      .onMessage("note", (from, payload) => received.push(`${from}:${decoder.decode(payload)}`));
    assert.equal(cluster.mesh("n1").send("n9", "note", new Uint8Array()), "no-link");
    await waitFor("link", () => fullyLinked(cluster, ["n1", "n3"]));
    // Every frame from a peer is counted, on any channel, listened to or not: the failure detector's input.
    const framesBefore = cluster.mesh("n3").framesReceived("n1");
    for (let i = 0; i < 100; i++)
      assert.equal(cluster.mesh("n1").send("n3", "note", encoder.encode(String(i))), "sent");
    assert.equal(cluster.mesh("n1").send("n3", "unheard", new Uint8Array()), "sent");
    await waitFor("100 messages", () => received.length === 100);
    await waitFor("101 frames counted", () => cluster.mesh("n3").framesReceived("n1") - framesBefore >= 101);
    assert.equal(cluster.mesh("n3").framesReceived("n9"), 0, "an unknown peer has no count");
    assert.deepEqual(
      received,
      Array.from({ length: 100 }, (_, i) => `n1:${i}`),
    );
  });

  it("mesh: renew: the lower id dials a fresh link that replaces the current one; both ends hear of it", async () => {
    const cluster = await TestCluster.create({ ids: ["n1", "n3"], security: pskSecurity });
    clusters.push(cluster);
    const renewed: string[] = [];
    for (const id of ["n1", "n3"])
      cluster.mesh(id).on("link:renewed", (peer) => renewed.push(`${id}:${peer}`));
    const downs: string[] = [];
    cluster.mesh("n1").on("link:down", (peer) => downs.push(peer));
    await waitFor("link", () => fullyLinked(cluster, ["n1", "n3"]));
    const received: string[] = [];
    cluster.mesh("n3").onMessage("note", (_from, payload) => received.push(decoder.decode(payload)));
    assert.equal(cluster.mesh("n3").renew("n1", Date.now()), false, "only the lower id renews");
    assert.equal(cluster.mesh("n1").renew("n9", Date.now()), false, "no such peer");
    // Both ends dialed at start-up; n1 renews once its own dial has settled (that one may replace too).
    assert.equal(cluster.mesh("n1").renew("n3", 0), false, "a link up since the given moment is kept");
    await waitFor("n1 renews", () => cluster.mesh("n1").renew("n3", Date.now() + 1));
    renewed.length = 0;
    assert.equal(cluster.mesh("n1").send("n3", "note", encoder.encode("during")), "sent");
    await waitFor("renewed on both ends", () => renewed.includes("n1:n3") && renewed.includes("n3:n1"));
    assert.equal(cluster.mesh("n1").send("n3", "note", encoder.encode("after")), "sent");
    await waitFor("both messages", () => received.length === 2);
    assert.deepEqual(received, ["during", "after"]);
    assert.deepEqual(downs, [], "the peer never looked unreachable");
  });

  it("mesh: reconnect: a mesh restarted on the same port is redialed", async () => {
    const cluster = await TestCluster.create({ ids: ["n1", "n2", "n3"], security: pskSecurity });
    clusters.push(cluster);
    const downs: string[] = [];
    cluster.mesh("n1").on("link:down", (peer, reason) => downs.push(`${peer}:${reason}`));
    await waitFor("links", () => fullyLinked(cluster, ["n1", "n2", "n3"]));
    await cluster.stop("n2");
    await waitFor("n1 sees n2 down", () => !linkStatus(cluster.mesh("n1"), "n2").connected);
    assert.equal(downs.length, 1);
    await cluster.start("n2");
    cluster.mesh("n2").onRequest("echo", (_from, payload) => payload);
    await waitFor("links again", () => fullyLinked(cluster, ["n1", "n2", "n3"]));
    await assertServesPeers(cluster, "n1", "n2");
    await assertServesPeers(cluster, "n3", "n2");
  });

  it("mesh: psk: a node with the wrong key gets no link, and the reason is logged", async () => {
    const cluster = await TestCluster.create({
      ids: ["n1", "n2"],
      security: (id) => ({ mode: "psk", key: id === "n2" ? randomBytes(32) : PSK }),
    });
    clusters.push(cluster);
    const n1 = cluster.node("n1");
    await waitFor("logged tls failure", () => n1.entries.some((e) => e.msg === "mesh tls handshake failed"));
    await waitFor("logged dial failure", () =>
      n1.entries.some((e) => e.msg === "mesh dial failed" && e.peer === "n2"),
    );
    assert.equal(linkStatus(n1.mesh, "n2").connected, false);
    assert.equal(linkStatus(cluster.mesh("n2"), "n1").connected, false);
    assert.ok(linkStatus(n1.mesh, "n2").lastError);
    const lines = JSON.stringify(n1.entries);
    assert.ok(
      !lines.includes(PSK.toString("hex")) && !lines.includes(PSK.toString("base64")),
      "key never logged",
    );
  });
});

describe("mesh: hostile peers", { timeout: 180_000 }, () => {
  const ids = ["n1", "n2", "n3"];
  let cluster: TestCluster | undefined;
  after(() => cluster?.dispose());

  /** n1 and n3 run; the raw client authenticates with the cluster PSK and misbehaves against n1. */
  async function setup(): Promise<TestCluster> {
    if (cluster === undefined) {
      cluster = await TestCluster.create(
        // Long enough that a loaded machine never times out a hello the raw client did send.
        { ids, security: pskSecurity, limits: { handshakeTimeoutMs: 2_000 } },
        ["n1", "n3"],
      );
      cluster.mesh("n3").onRequest("echo", (_from, payload) => payload);
    }
    const running = cluster;
    await waitFor("n1-n3 link", () => fullyLinked(running, ["n1", "n3"]));
    return running;
  }

  const cases: Array<{ name: string; act: (ws: WebSocket) => void; code: number }> = [
    { name: "garbage bytes", act: (ws) => ws.send(randomBytes(64)), code: CloseCode.ProtocolError },
    { name: "a text frame", act: (ws) => ws.send("hello?"), code: CloseCode.ProtocolError },
    {
      name: "a hello that is not JSON",
      act: (ws) =>
        ws.send(
          encodeFrame({ kind: FrameKind.Hello, requestId: 0, channel: "", payload: encoder.encode("{") }),
        ),
      code: CloseCode.ProtocolError,
    },
    {
      name: "a wrong protocol version",
      act: (ws) => ws.send(hello({ protocolVersionMin: 7, protocolVersionMax: 9 })),
      code: CloseCode.VersionMismatch,
    },
    {
      name: "a wrong cluster name",
      act: (ws) => ws.send(hello({ clusterName: "other" })),
      code: CloseCode.ClusterMismatch,
    },
    {
      name: "a hello claiming another node id",
      act: (ws) => ws.send(hello({ nodeId: "n3" })),
      code: CloseCode.IdentityMismatch,
    },
    { name: "silence until the handshake timeout", act: () => {}, code: CloseCode.HandshakeTimeout },
  ];
  let serial = 0;
  for (const { name, act, code } of cases) {
    it(`mesh: hostile: ${name} is disconnected with code ${code}; real peers keep working`, async () => {
      const c = await setup();
      const ws = rawPskClient(c.ports.get("n1") as number, "n2");
      const closed = closeOf(ws);
      await opened(ws);
      act(ws);
      const { code: closeCode, reason } = await closed;
      assert.equal(closeCode, code);
      assert.ok(reason.length > 0, "a short reason is sent");
      serial += 1;
      const refusals = () =>
        c.node("n1").entries.filter((e) => e.msg === "mesh link refused" && e.peer === "n2");
      await waitFor("refusal logged", () => refusals().length === serial);
      assert.ok(refusals().every((e) => typeof e.reason === "string"));
      await assertServesPeers(c, "n1", "n3");
    });
  }

  it("mesh: hostile: an unknown node id is refused", async () => {
    const c = await setup();
    const ws = rawPskClient(c.ports.get("n1") as number, "n7");
    const closed = closeOf(ws);
    await opened(ws);
    ws.send(hello({ nodeId: "n7" }));
    assert.equal((await closed).code, CloseCode.UnknownNode);
    await assertServesPeers(c, "n1", "n3");
  });

  it("mesh: keepalive: a link that carries frames is not pinged; once silent, it is", async () => {
    const c = await TestCluster.create(
      { ids: ["n1", "n2"], security: pskSecurity, limits: { keepaliveIntervalMs: 500 } },
      ["n1"],
    );
    try {
      const ws = rawPskClient(c.ports.get("n1") as number, "n2");
      let pings = 0;
      ws.on("ping", () => pings++);
      await opened(ws);
      ws.send(hello({}));
      await waitFor("link up", () => linkStatus(c.mesh("n1"), "n2").connected);
      const note = encodeFrame({
        kind: FrameKind.Message,
        requestId: 0,
        channel: "note",
        payload: new Uint8Array(),
      });
      // A frame every 20 ms for 6 keepalive intervals: each check finds the link heard from (one ping is
      // allowed for a check that lands right after a stall of this process, before it read the frames).
      for (let i = 0; i < 150; i++) {
        ws.send(note);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.ok(pings <= 1, `${pings} pings on a link that carries frames`);
      const pingsWhileBusy = pings;
      // Silent now: pinged (ws answers with a pong), and the link stays up.
      await waitFor("a ping", () => pings > pingsWhileBusy);
      assert.equal(linkStatus(c.mesh("n1"), "n2").connected, true);
      ws.terminate();
    } finally {
      await c.dispose();
    }
  });

  it("mesh: keepalive: a peer that stops answering pings is dropped", async () => {
    const c = await TestCluster.create(
      { ids: ["n1", "n2"], security: pskSecurity, limits: { keepaliveIntervalMs: 50 } },
      ["n1"],
    );
    try {
      // Events, not polling: with a 50 ms keepalive the link may be up for less than one poll.
      const events: string[] = [];
      c.mesh("n1").on("link:up", (peer) => events.push(`up ${peer}`));
      c.mesh("n1").on("link:down", (peer, reason) => events.push(`down ${peer}: ${reason}`));
      const ws = rawPskClient(c.ports.get("n1") as number, "n2", { autoPong: false } as ClientOptions);
      const closed = closeOf(ws);
      await opened(ws);
      ws.send(hello({}));
      await closed;
      await waitFor("link down", () => events.length === 2);
      assert.deepEqual(events, ["up n2", "down n2: keepalive timeout"]);
    } finally {
      await c.dispose();
    }
  });

  it("mesh: keepalive: one check of every link on the agent's ticker, not a timer per link", async () => {
    const ticker = new Ticker();
    const c = await TestCluster.create(
      { ids: ["n1", "n2", "n3"], security: pskSecurity, limits: { keepaliveIntervalMs: 50 }, ticker },
      ["n1"],
    );
    try {
      assert.equal(ticker.subscriberCount, 1, "the mesh's keepalive subscribes once");
      const downs: string[] = [];
      c.mesh("n1").on("link:down", (peer, reason) => downs.push(`${peer}: ${reason}`));
      for (const id of ["n2", "n3"]) {
        const ws = rawPskClient(c.ports.get("n1") as number, id, { autoPong: false } as ClientOptions);
        await opened(ws);
        ws.send(hello({ nodeId: id }));
      }
      await waitFor("both links dropped", () => downs.length === 2);
      assert.deepEqual(downs.sort(), ["n2: keepalive timeout", "n3: keepalive timeout"]);
      assert.equal(ticker.subscriberCount, 1);
    } finally {
      await c.dispose();
    }
    assert.equal(ticker.subscriberCount, 0, "closing the mesh stops its checks");
  });
});

describe("mesh: mtls", { timeout: 180_000 }, () => {
  const ids = ["n1", "n2", "n3"];
  const clusters: TestCluster[] = [];
  after(() => Promise.all(clusters.map((c) => c.dispose())));
  let ca: PemPair;
  const certs = new Map<string, PemPair>();

  async function mtls(id: string, cert?: PemPair, caPem?: string): Promise<MeshSecurity> {
    ca ??= await createClusterCa({ commonName: "test-ca", validDays: 1 });
    if (!certs.has(id))
      certs.set(id, await issueCertificate(ca, { commonName: id, kind: "node", validDays: 1 }));
    const pair = cert ?? (certs.get(id) as PemPair);
    return { mode: "mtls", caCertPem: caPem ?? ca.certPem, certPem: pair.certPem, keyPem: pair.keyPem };
  }

  async function mtlsCluster(extra: Partial<ClusterSpec> = {}, only?: string[]): Promise<TestCluster> {
    const securities = new Map<string, MeshSecurity>();
    for (const id of ids) securities.set(id, await mtls(id));
    const cluster = await TestCluster.create(
      { ids, security: (id) => securities.get(id) as MeshSecurity, ...extra },
      only,
    );
    clusters.push(cluster);
    return cluster;
  }

  it("mesh: mtls: three nodes with certificates from the cluster CA link up and answer", async () => {
    const cluster = await mtlsCluster();
    cluster.mesh("n3").onRequest("echo", (_from, payload) => payload);
    await waitFor("links", () => fullyLinked(cluster, ids));
    await assertServesPeers(cluster, "n1", "n3");
  });

  it("mesh: mtls: a certificate from another CA is refused", async () => {
    const cluster = await mtlsCluster({}, ["n1", "n2"]);
    const rogueCa = await createClusterCa({ commonName: "rogue-ca", validDays: 1 });
    const rogue = await issueCertificate(rogueCa, { commonName: "n3", kind: "node", validDays: 1 });
    const n3 = await cluster.start("n3", await mtls("n3", rogue, rogueCa.certPem));
    await waitFor("n1 logged tls failure", () =>
      cluster.node("n1").entries.some((e) => e.msg === "mesh tls handshake failed"),
    );
    await waitFor("n3 logged dial failure", () => n3.entries.some((e) => e.msg === "mesh dial failed"));
    assert.equal(linkStatus(cluster.mesh("n1"), "n3").connected, false);
    assert.equal(linkStatus(n3.mesh, "n1").connected, false);
    await waitFor("n1-n2 link", () => fullyLinked(cluster, ["n1", "n2"]));
  });

  it("mesh: mtls: a valid certificate for n3 cannot claim to be n2", async () => {
    const cluster = await mtlsCluster({}, ["n1"]);
    await mtls("n3");
    const impostor = await cluster.start("n2", await mtls("n2", certs.get("n3")));
    await waitFor("n1 refused the hello", () =>
      cluster
        .node("n1")
        .entries.some((e) => e.msg === "mesh link refused" && e.closeCode === CloseCode.IdentityMismatch),
    );
    await waitFor("impostor logged the refusal", () =>
      impostor.entries.some((e) => e.msg === "mesh dial failed" && /refused by peer/.test(String(e.reason))),
    );
    await waitFor("n1's dial to the impostor failed on the certificate CN", () =>
      cluster
        .node("n1")
        .entries.some((e) => e.msg === "mesh dial failed" && /CN n3 is not n2/.test(String(e.reason))),
    );
    assert.equal(linkStatus(cluster.mesh("n1"), "n2").connected, false);
    await assert.rejects(impostor.mesh.request("n1", "echo", new Uint8Array()), (error) => {
      assert.ok(error instanceof PeerUnreachableError);
      assert.ok(error.cause instanceof HandshakeError, "the cause says the handshake was refused");
      return true;
    });
  });

  it("mesh: http: the handler receives the certificate identity; without a handler 404 JSON", async () => {
    const seen: ClientIdentity[] = [];
    const cluster = await mtlsCluster(
      {
        httpHandler: (_req, res, identity) => {
          seen.push(identity);
          res.end("ok");
        },
      },
      ["n1"],
    );
    const client = await issueCertificate(ca, { commonName: "operator", kind: "client", validDays: 1 });
    const response = await httpsGet(cluster.ports.get("n1") as number, "/api/v1/status", {
      ca: ca.certPem,
      cert: client.certPem,
      key: client.keyPem,
      checkServerIdentity: () => undefined,
    });
    assert.equal(response.status, 200);
    assert.deepEqual(seen, [{ kind: "certificate", name: "operator" }]);

    const plain = await mtlsCluster({}, ["n2"]);
    const missing = await httpsGet(plain.ports.get("n2") as number, "/nope", {
      ca: ca.certPem,
      cert: client.certPem,
      key: client.keyPem,
      checkServerIdentity: () => undefined,
    });
    assert.equal(missing.status, 404);
    assert.equal((JSON.parse(missing.body) as { error: { code: string } }).error.code, "not_found");
  });

  it("mesh: http: a client certificate cannot open a mesh link", async () => {
    const cluster = await mtlsCluster({}, ["n1"]);
    const client = await issueCertificate(ca, { commonName: "n2", kind: "client", validDays: 1 });
    const options = {
      ca: ca.certPem,
      cert: client.certPem,
      key: client.keyPem,
      checkServerIdentity: () => undefined,
    } as unknown as ClientOptions;
    const ws = new WebSocket(`wss://127.0.0.1:${cluster.ports.get("n1")}${MESH_PATH}`, options);
    const error = await new Promise<Error>((resolve) => ws.on("error", resolve));
    assert.match(error.message, /Unexpected server response: 403/);
  });
});

describe("mesh: http over psk", { timeout: 120_000 }, () => {
  it("mesh: http: the handler receives the psk identity", async () => {
    const seen: ClientIdentity[] = [];
    const cluster = await TestCluster.create({
      ids: ["n1"],
      security: pskSecurity,
      httpHandler: (_req, res, identity) => {
        seen.push(identity);
        res.end("ok");
      },
    });
    try {
      const response = await httpsGet(cluster.ports.get("n1") as number, "/api/v1/status", {
        pskCallback: () => ({ psk: PSK, identity: "operator" }),
        ciphers: "TLS_AES_128_GCM_SHA256",
        checkServerIdentity: () => undefined,
      });
      assert.equal(response.status, 200);
      assert.deepEqual(seen, [{ kind: "psk", name: "operator" }]);
    } finally {
      await cluster.dispose();
    }
  });
});

function httpsGet(
  port: number,
  path: string,
  tls: RequestOptions & Pick<ConnectionOptions, "pskCallback">,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: "127.0.0.1", port, path, minVersion: "TLSv1.3", agent: false, ...tls },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}
