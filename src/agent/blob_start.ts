// The blob capability's start (src/agent/blob_capability.ts loads it): the age key from its file, the
// configured stores (each opened on first use), the records in the replicated store, the offload step it
// gives the journal (started after it), and the /api/v1/blobs routes. Its events (offloads) go to
// GET /api/v1/events.
import { backupRoutes, blobRoutes } from "../api/index.ts";
import {
  BackupRunner,
  BlobNode,
  BlobRecords,
  BlobStores,
  clearBackupLeftovers,
  OffloadStep,
} from "../blob/index.ts";
import { readAgeKeyFile } from "../journal/index.ts";
import type { BlobCapabilityConfig } from "./blob_capability.ts";
import { type CapabilityBase, type RunningCapability, requireStore } from "./capability.ts";

export async function startBlob(
  config: BlobCapabilityConfig,
  base: CapabilityBase,
): Promise<RunningCapability> {
  const logger = base.logger.child({ component: "blob" });
  const store = requireStore(base, "the blob capability");
  const key = await readAgeKeyFile(config.keyFile);
  const stores = new BlobStores(config.stores, base.nodeId);
  const records = new BlobRecords(store, config.recordsPrefix);
  const node = new BlobNode({
    stores,
    records,
    identities: [key.identity],
    offloadStore: config.offload?.store ?? null,
  });
  const offload =
    config.offload === null
      ? []
      : [
          new OffloadStep({
            stores,
            store: config.offload.store,
            records,
            recipients: [key.recipient, ...config.recipients],
            dirs: config.offload.dirs,
            types: config.offload.types,
            keepLocal: config.offload.keepLocal,
            // One peer holds the record before the file goes here; alone, this node's disk must do.
            minAcks: () =>
              Math.min(1, base.coordination.members().filter((m) => m.id !== base.nodeId).length),
            logger,
            onEvent: (fields) => base.events.emit("blob", fields),
          }),
        ];
  await clearBackupLeftovers(base.dataDir);
  const backups = new BackupRunner({
    nodeId: base.nodeId,
    clusterName: config.clusterName,
    version: config.version,
    dataDir: base.dataDir,
    stores,
    targets: config.backups.targets,
    schedules: config.backups.schedules,
    recipients: [key.recipient, ...config.recipients],
    keyMaterial: config.keyMaterial,
    logger,
    onEvent: (fields) => base.events.emit("backup", fields),
  });
  backups.start();
  logger.info(
    { stores: stores.names(), offload: config.offload?.store ?? null, backupTargets: backups.targetNames() },
    "blob stores ready",
  );
  return {
    routes: [...blobRoutes(node, logger), ...backupRoutes(backups)],
    channels: [],
    status: () => ({ ...node.status(), backupTargets: backups.targetNames() }),
    async stop() {
      await backups.stop();
      await node.close();
    },
    provides: { postSteps: offload, backups },
  };
}
