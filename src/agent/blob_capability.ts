// Blob stores as a capability (src/agent/blob_start.ts starts it). Loaded only when a node has a `blob:`
// section: its encryption and its store clients would cost every other agent memory idle.
import type { BlobConfig } from "../config/index.ts";
import type { Capability } from "./capability.ts";

export interface BlobCapabilityConfig extends BlobConfig {
  /** Written into each backup's manifest. */
  clusterName: string;
  version: string;
}

export const blobCapability: Capability<BlobCapabilityConfig> = {
  name: "blob",
  async start(config, base) {
    const { startBlob } = await import("./blob_start.ts");
    return startBlob(config, base);
  },
};
