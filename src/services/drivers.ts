// A driver for each entry of a service's `drivers:`, by its type.
import type { Logger } from "pino";
import { type DriverConfig, dnsDriverAddress } from "../config/index.ts";
import type { NodeId } from "../core/types.ts";
import { DnsDriver } from "./dns_driver.ts";
import { type Driver, ExecDriver } from "./exec_driver.ts";
import { VipDriver } from "./vip_driver.ts";

export interface DriverHost {
  nodeId: NodeId;
  /** The host this node advertises to its peers: the dns driver's address unless its config names one. */
  advertiseHost: string;
  logger: Logger;
}

export function createDriver(config: DriverConfig, host: DriverHost): Driver {
  switch (config.type) {
    case "exec":
      return new ExecDriver(config, host.logger);
    case "vip":
      return new VipDriver(config, host.logger);
    case "dns": {
      const address = dnsDriverAddress(config, host.nodeId, host.advertiseHost);
      // Loading the config checked that this node has one.
      if (!address.ok) throw new Error(`dns driver: ${address.reason}`);
      return new DnsDriver(config, address.address, host.logger);
    }
  }
}
