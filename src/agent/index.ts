// The agent's composition: the capability interface and the capabilities it plugs in.

export { blobCapability } from "./blob_capability.ts";
export {
  assertChannelsDisjoint,
  type Capability,
  type CapabilityBase,
  type PluggedCapability,
  type Provided,
  plug,
  type RunningCapability,
} from "./capability.ts";
export {
  type JournalCapabilityConfig,
  type JournalEmbedding,
  journalCapability,
} from "./journal_capability.ts";
export { provisionCapability } from "./provision_capability.ts";
export { type ServicesCapabilityConfig, servicesCapability } from "./services_capability.ts";
export { storeCapability, tombstoneSweepMs } from "./store_capability.ts";
