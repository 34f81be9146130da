// The journal's start (src/agent/journal_capability.ts loads it): the replication key from its file,
// journal.db in the data directory, the mesh transport on the channel "journal" following the cluster's
// membership, the applier with this node's handlers, and the /api/v1/journal routes. Its events
// (refusals, dead letters) go to GET /api/v1/events.
import { journalRoutes } from "../api/index.ts";
import type { JournalConfig } from "../config/index.ts";
import { JournalKey, JournalNode } from "../journal/index.ts";
import { JOURNAL_CHANNEL, MeshTransport } from "../queue/index.ts";
import type { CapabilityBase, RunningCapability } from "./capability.ts";

export async function startJournal(config: JournalConfig, base: CapabilityBase): Promise<RunningCapability> {
  const logger = base.logger.child({ component: "journal" });
  const key = await JournalKey.load(config.keyFile);
  const transport = new MeshTransport({ mesh: base.mesh, peers: base.peers, logger });
  const node = new JournalNode({
    nodeId: base.nodeId,
    dataDir: base.dataDir,
    config,
    key,
    transport,
    logger,
    onEvent: (fields) => base.events.emit("journal", fields),
  });
  try {
    node.start();
  } catch (error) {
    await node.stop();
    throw error;
  }
  const unfollow = base.coordination.on("members:changed", (members) => {
    if (members.length === 0) return;
    transport.setPeers(members.map((m) => m.id).filter((id) => id !== base.nodeId));
  });
  logger.info({ queue: transport.kind, recipient: key.recipient }, "journal started");
  return {
    routes: journalRoutes(node),
    channels: [JOURNAL_CHANNEL],
    status: () => node.status(),
    async stop() {
      unfollow();
      await node.stop();
    },
  };
}
