// Nodes that cannot prove who they are never join: wrong CA, wrong PSK, forged node id. Garbage on the
// mesh port is survived.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "node:tls";
import { pino } from "pino";
import WebSocket from "ws";
import { Mesh } from "../../src/mesh/index.ts";
import { createClusterCa, issueCertificate } from "../../src/pki/index.ts";
import { ClusterHarness } from "../support/cluster_harness.ts";

const MESH_PATH = "/api/internal/mesh";

/** Watches for `ms` and at least 5 answers (a late answer under load is asked again, not a failure). */
async function assertNoLeaderFor(harness: ClusterHarness, id: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let answers = 0;
  while (Date.now() < deadline || answers < 5) {
    const status = await harness.waitFor(`${id} to answer`, [id], (all) => all.get(id));
    assert.equal(status.leaderId, null, `${id} must not find a leader`);
    answers += 1;
    await sleep(200);
  }
}

/**
 * A new cluster bootstraps only once every listed node announced the same list, so a node that cannot link
 * would keep the others from ever electing: bootstrap with every node's own credentials first, then stop
 * `ids` (the nodes that come back with forged ones).
 */
async function bootstrapThenStop(harness: ClusterHarness, ids: readonly string[]): Promise<void> {
  harness.startAll();
  await harness.waitForAgreedLeader(["n1", "n2", "n3"]);
  for (const id of ids) await harness.kill(id, "SIGTERM");
}

describe("security: refused identities", { timeout: 240_000 }, () => {
  const harnesses: ClusterHarness[] = [];
  after(() => Promise.all(harnesses.map((h) => h.dispose())));

  it("a node with a certificate from another CA is refused", async () => {
    const harness = await ClusterHarness.create({ nodes: 3 });
    harnesses.push(harness);
    await bootstrapThenStop(harness, ["n3"]);
    const rogueCa = await createClusterCa({ commonName: "rogue-ca", validDays: 1 });
    const rogue = await issueCertificate(rogueCa, { commonName: "n3", kind: "node", validDays: 1 });
    writeFileSync(join(harness.dir, "tls", "rogue-ca.pem"), rogueCa.certPem);
    writeFileSync(join(harness.dir, "tls", "rogue-n3.pem"), rogue.certPem);
    writeFileSync(join(harness.dir, "tls", "rogue-n3-key.pem"), rogue.keyPem, { mode: 0o600 });
    harness.editConfig("n3", (config) => {
      config.security = {
        mode: "mtls",
        ca_file: "tls/rogue-ca.pem",
        cert_file: "tls/rogue-n3.pem",
        key_file: "tls/rogue-n3-key.pem",
      };
    });
    await harness.restart("n3");
    await harness.waitForAgreedLeader(["n1", "n2"]);
    await assertNoLeaderFor(harness, "n3", 2_000);
    const n1 = await harness.waitFor("n1 to answer", ["n1"], (all) => all.get("n1"));
    assert.equal(n1.peers.find((p) => p.id === "n3")?.link, "down");
  });

  it("a node with the wrong PSK is refused", async () => {
    const harness = await ClusterHarness.create({ nodes: 3, security: "psk" });
    harnesses.push(harness);
    await bootstrapThenStop(harness, ["n3"]);
    writeFileSync(join(harness.dir, "wrong-psk.key"), `${"ab".repeat(32)}\n`, { mode: 0o600 });
    harness.editConfig("n3", (config) => {
      config.security = { mode: "psk", psk_file: "wrong-psk.key" };
    });
    await harness.restart("n3");
    await harness.waitForAgreedLeader(["n1", "n2"]);
    await assertNoLeaderFor(harness, "n3", 2_000);
  });

  it("an impostor presenting n3's valid certificate while claiming to be n2 is refused", async () => {
    // The agent's own config check refuses a certificate whose CN is not the node id, so the impostor is
    // a bare mesh endpoint speaking the real protocol from n2's address with n3's certificate.
    const harness = await ClusterHarness.create({ nodes: 3 });
    harnesses.push(harness);
    await bootstrapThenStop(harness, ["n1", "n2", "n3"]);
    const file = (name: string) => readFileSync(join(harness.dir, "tls", name), "utf8");
    const impostor = await Mesh.start({
      selfId: "n2",
      clusterName: "tandem-dev",
      listenHost: "127.0.0.1",
      listenPort: harness.node("n2").meshPort,
      peers: [
        { id: "n1", address: `127.0.0.1:${harness.node("n1").meshPort}` },
        { id: "n3", address: `127.0.0.1:${harness.node("n3").meshPort}` },
      ],
      security: {
        mode: "mtls",
        caCertPem: file("ca.pem"),
        certPem: file("n3.pem"),
        keyPem: file("n3-key.pem"),
      },
      logger: pino({ level: "silent" }),
    });
    try {
      await harness.restart("n1");
      await harness.waitForApi(["n1"]);
      // n1 + the impostor would be a quorum of 3: a leader would prove the impostor was accepted.
      await assertNoLeaderFor(harness, "n1", 3_000);
      assert.equal(impostor.peers().find((p) => p.id === "n1")?.connected, false, "no link to the impostor");
      await harness.restart("n3");
      const leader = await harness.waitForAgreedLeader(["n1", "n3"]);
      assert.notEqual(leader.leaderId, "n2");
    } finally {
      await impostor.close();
    }
  });
});

describe("security: garbage on the mesh port", { timeout: 120_000 }, () => {
  let harness: ClusterHarness;
  after(() => harness?.dispose());

  it("raw bytes, non-peer clients and malformed frames are disconnected; the cluster keeps its leader", async () => {
    harness = await ClusterHarness.create({ nodes: 3 });
    harness.startAll();
    const before = await harness.waitForAgreedLeader(["n1", "n2", "n3"]);
    const tls = (name: string) => ({
      ca: readFileSync(join(harness.dir, "tls", "ca.pem")),
      cert: readFileSync(join(harness.dir, "tls", `${name}.pem`)),
      key: readFileSync(join(harness.dir, "tls", `${name}-key.pem`)),
    });
    const port = harness.node("n1").meshPort;

    // 1. Random bytes straight after the TLS handshake.
    await new Promise<void>((resolve) => {
      const socket = connect(
        { host: "127.0.0.1", port, ...tls("n2"), checkServerIdentity: () => undefined },
        () => {
          socket.write(Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)));
        },
      );
      socket.resume(); // read the server's 400 so the close is seen
      socket.on("error", () => resolve());
      socket.on("close", () => resolve());
    });

    // 2. A peer's certificate, a real WebSocket, then malformed frames of every kind.
    for (const frame of [Buffer.from([0xff, 0xff, 0xff]), "text frames are not allowed", Buffer.alloc(0)]) {
      const closed = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`wss://127.0.0.1:${port}${MESH_PATH}`, tls("n2"));
        ws.on("open", () => ws.send(frame));
        ws.on("close", (code) => resolve(code));
        ws.on("error", () => undefined);
      });
      assert.ok(closed >= 1000, `link closed (code ${closed})`);
    }

    const afterGarbage = await harness.waitForAgreedLeader(["n1", "n2", "n3"]);
    assert.deepEqual(afterGarbage, before, "leader and term unchanged");
    assert.equal(harness.running().length, 3, "no agent crashed");
  });
});
