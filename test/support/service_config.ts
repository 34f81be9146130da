// A normalised service config (what tandem.yml's services: section loads into), with test defaults.
import type { ServiceConfig } from "../../src/config/index.ts";

export function serviceConfig(name: string, overrides: Partial<ServiceConfig> = {}): ServiceConfig {
  return {
    name,
    description: "",
    nodes: null,
    prefer: [],
    failover: true,
    failoverAfterMs: 3000,
    stopMustSucceed: false,
    restoreWindow: null,
    drivers: [],
    health: null,
    actions: {},
    admins: [],
    ...overrides,
  };
}
