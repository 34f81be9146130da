// Services as a capability: a runner per service this node may run, the reports to the leader, and the
// leader's placement loop, on the mesh channel "services" and the shared ticker; GET /api/v1/services.
import { serviceRoutes } from "../api/index.ts";
import type { ServiceConfig } from "../config/index.ts";
import {
  createDriver,
  SERVICES_CALL_CHANNEL,
  SERVICES_CHANNEL,
  SERVICES_CONTROL_CHANNEL,
  ServicesNode,
  serviceWindow,
} from "../services/index.ts";
import type { Capability } from "./capability.ts";

export interface ServicesCapabilityConfig {
  services: readonly ServiceConfig[];
  /** The cluster's grant lease. */
  leaseMs: number;
  /** The host this node advertises (the dns driver's default address). */
  advertiseHost: string;
}

export const servicesCapability: Capability<ServicesCapabilityConfig> = {
  name: "services",
  async start(config, base) {
    const logger = base.logger.child({ component: "services" });
    const node = new ServicesNode({
      nodeId: base.nodeId,
      services: config.services,
      drivers: (service) => {
        const host = {
          nodeId: base.nodeId,
          advertiseHost: config.advertiseHost,
          logger: logger.child({ service: service.name }),
        };
        return service.drivers.map((driver) => createDriver(driver, host));
      },
      mesh: base.mesh,
      coordination: base.coordination,
      ticker: base.ticker,
      leaseMs: config.leaseMs,
      logger,
      openWindow: serviceWindow,
      dataDir: base.dataDir,
      events: base.events,
    });
    await node.start();
    return {
      routes: serviceRoutes(node),
      channels: [SERVICES_CHANNEL, SERVICES_CONTROL_CHANNEL, SERVICES_CALL_CHANNEL],
      status: () => node.status().local,
      stop: () => node.stop(),
    };
  },
};
