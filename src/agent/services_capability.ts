// Services as a capability: a runner per service this node may run, the reports to the leader, and the
// leader's placement loop, on the mesh channel "services" and the shared ticker; GET /api/v1/services.
import { serviceRoutes } from "../api/index.ts";
import type { ServiceConfig } from "../config/index.ts";
import { ExecDriver, SERVICES_CHANNEL, ServicesNode, serviceWindow } from "../services/index.ts";
import type { Capability } from "./capability.ts";

export interface ServicesCapabilityConfig {
  services: readonly ServiceConfig[];
  /** The cluster's grant lease. */
  leaseMs: number;
}

export const servicesCapability: Capability<ServicesCapabilityConfig> = {
  name: "services",
  async start(config, base) {
    const logger = base.logger.child({ component: "services" });
    const node = new ServicesNode({
      nodeId: base.nodeId,
      services: config.services,
      drivers: (service) =>
        service.drivers.map((driver) => new ExecDriver(driver, logger.child({ service: service.name }))),
      mesh: base.mesh,
      coordination: base.coordination,
      ticker: base.ticker,
      leaseMs: config.leaseMs,
      logger,
      openWindow: serviceWindow,
    });
    await node.start();
    return {
      routes: serviceRoutes(node),
      channels: [SERVICES_CHANNEL],
      status: () => node.status().local,
      stop: () => node.stop(),
    };
  },
};
