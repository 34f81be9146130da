// Provisioning as a capability (src/agent/provision_start.ts starts it). Loaded only when a node has a
// `provision:` section: the PostgreSQL client would cost every other agent memory idle.
import type { ProvisionConfig } from "../config/index.ts";
import type { Capability } from "./capability.ts";

export const provisionCapability: Capability<ProvisionConfig> = {
  name: "provision",
  async start(config, base) {
    const { startProvision } = await import("./provision_start.ts");
    return startProvision(config, base);
  },
};
