// Public surface of src/services: one owner per service, fenced by grants, placed by the leader.
export { createDriver, type DriverHost } from "./drivers.ts";
export { type Driver, type DriverContext, type DriverStatus, driverEnv, ExecDriver } from "./exec_driver.ts";
export { openRestoreWindow, serviceWindow } from "./restore_window.ts";
export { type RunnerReport, type RunnerState, ServiceRunner, startRetryMs } from "./service_runner.ts";
export {
  placementEveryMs,
  reportEveryMs,
  ServicesNode,
  type ServicesNodeOptions,
  type ServicesTable,
} from "./services_node.ts";
export {
  type CommandAnswer,
  type OperatorCommand,
  SERVICES_CALL_CHANNEL,
  SERVICES_CHANNEL,
  SERVICES_CONTROL_CHANNEL,
  type ServiceCall,
  type ServiceCallAnswer,
  type ServiceTableEntry,
} from "./services_wire.ts";
