// Public surface of src/config: load and validate tandem.yml, load key material, timings, JSON Schema.
export { type AclRule, defaultAcl } from "./acl.ts";
export { formatHostPort, type HostPort, isLoopbackHost, parseHostPort } from "./address.ts";
export type {
  BackupScheduleConfig,
  BackupTargetConfig,
  BlobConfig,
  BlobStoreConfig,
  SecretSource,
} from "./blob_schema.ts";
export { type DnsDriverConfig, dnsDriverAddress } from "./dns_driver_schema.ts";
export { ConfigError, type ConfigProblem, formatProblem } from "./errors.ts";
export { configJsonSchema, configJsonSchemaText } from "./json_schema.ts";
export { configPathDefault, configPathEnv, loadConfig, parseConfigText, resolveConfigPath } from "./load.ts";
export type { ProvisionConfig, ProvisionServerConfig, ProvisionTargetConfig } from "./provision_schema.ts";
export { err, ok, type Result } from "./result.ts";
export { LogLevel, NodeRole, nodeIdPattern } from "./schema.ts";
export { type LoadedSecurity, loadMeshSecurity, pskBytesMin } from "./security.ts";
export { listenPortDefault, type StarterOptions, starterConfigText } from "./starter.ts";
export type {
  DriverConfig,
  ExecDriverConfig,
  HealthCheckConfig,
  HookConfig,
  JournalConfig,
  JournalHandlerConfig,
  JournalQueueConfig,
  PeerConfig,
  SecurityConfig,
  ServiceConfig,
  StoreConfig,
  TandemConfig,
} from "./tandem_config.ts";
export {
  lanTimings,
  localTimings,
  presetTimings,
  type Timings,
  TimingsPreset,
  type TimingTicks,
  toTicks,
  validateTimings,
  wanTimings,
} from "./timings.ts";
export { canonicalAddress, type VipDriverConfig, vipAnnounceIntervalMs } from "./vip_driver_schema.ts";
