// The loaded, normalised configuration (camelCase, absolute paths, parsed addresses, resolved timings)
// and the rules that span several fields.

import { isIP } from "node:net";
import { dirname, resolve } from "node:path";
import { validateStorePath } from "../core/store_path.ts";
import type { NodeId } from "../core/types.ts";
import { type AclRule, defaultAcl } from "./acl.ts";
import { type HostPort, isLoopbackHost, isWildcardHost, parseHostPort } from "./address.ts";
import { type BlobConfig, resolveBlob } from "./blob_schema.ts";
import { type DnsDriverConfig, dnsDriverAddress, toDnsDriverConfig } from "./dns_driver_schema.ts";
import { isHandlerName, type JournalFile, parseRetentionMs } from "./journal_schema.ts";
import { type ProvisionConfig, resolveProvision } from "./provision_schema.ts";
import type { ConfigFile, LogLevel, NodeRole } from "./schema.ts";
import { parseDurationMs, type ServiceFile } from "./services_schema.ts";
import { presetTimings, type Timings, timingsYamlKeys, validateTimings } from "./timings.ts";
import { toVipDriverConfig, type VipDriverConfig } from "./vip_driver_schema.ts";

export interface PeerConfig {
  id: NodeId;
  address: HostPort;
  role: NodeRole;
  priority: number;
}

export type SecurityConfig =
  | { mode: "mtls"; caFile: string; certFile: string; keyFile: string }
  | { mode: "psk"; pskFile?: string; pskEnv?: string };

export interface HookConfig {
  prefix: string;
  command: string[];
  debounceMs: number;
  timeoutMs: number;
}

/** How one entry type is applied on this node. */
export type JournalHandlerConfig =
  | { kind: "exec"; argv: string[]; timeoutMs: number }
  /** batchMax: up to that many entries (of different ordering keys) in one POST, as a JSON array. */
  | { kind: "webhook"; url: string; timeoutMs: number; batchMax?: number };

export type JournalQueueConfig =
  | { type: "mesh" }
  | {
      type: "nats";
      servers: string[];
      stream: string;
      subjectPrefix: string;
      /** Absolute; the token is read at start, never kept in the config. */
      tokenFile: string | null;
      tokenEnv: string | null;
    }
  | { type: "pubsub"; project: string; topic: string }
  | {
      type: "amqp";
      url: string;
      /** The exchange; the queues are `<prefix>.<node>`. */
      prefix: string;
      /** Absolute; the password is read at start, never kept in the config. */
      passwordFile: string | null;
      passwordEnv: string | null;
    }
  | {
      type: "redis";
      url: string;
      stream: string;
      /** Absolute; the password is read at start, never kept in the config. */
      passwordFile: string | null;
      passwordEnv: string | null;
    };

export interface JournalConfig {
  /** Absolute. */
  keyFile: string;
  queue: JournalQueueConfig;
  /** By entry type; "*" for every type without its own. */
  handlers: Record<string, JournalHandlerConfig>;
  /** Post-execution steps by name. */
  steps: Array<{ name: string; argv: string[]; types: string[] | null; timeoutMs: number }>;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  concurrency: number;
  /** Shipped entries of this node older than this (and owing no step) are pruned; 0: kept for good. */
  outboxRetentionMs: number;
}

export interface StoreConfig {
  readOnly: boolean;
  minAcks: number | "all";
  writeTimeoutMs: number;
  antiEntropyIntervalMs: number;
  tombstoneHorizonMs: number;
  valueBytesMax: number;
  /** null: the store is not written to disk as files (it is still kept in data_dir). */
  materialise: {
    /** Absolute. */
    dir: string;
    prefix: string;
    fileMode: number;
    dirMode: number;
    uid?: number;
    gid?: number;
    hooks: HookConfig[];
  } | null;
}

export interface ExecDriverConfig {
  type: "exec";
  start: string[];
  stop: string[];
  status: string[] | null;
  timeoutMs: number;
}

export type DriverConfig = ExecDriverConfig | VipDriverConfig | DnsDriverConfig;

export interface HealthCheckConfig {
  check: { type: "exec"; argv: string[] } | { type: "http"; url: string };
  intervalMs: number;
  timeoutMs: number;
  /** Failures in a row before it counts as unhealthy. */
  failures: number;
}

export interface ServiceConfig {
  name: string;
  description: string;
  /** null: every member that is not a witness. */
  nodes: NodeId[] | null;
  prefer: NodeId[];
  failover: boolean;
  failoverAfterMs: number;
  /** A failed stop keeps it from starting anywhere until the stop, retried, succeeds. */
  stopMustSucceed: boolean;
  restoreWindow: { cron: string; lengthMs: number; timezone: string } | null;
  drivers: DriverConfig[];
  /** null: running counts as healthy. */
  health: HealthCheckConfig | null;
  /** Named commands run on the owner, with the caller's arguments appended. */
  actions: Record<string, { run: string[]; timeoutMs: number }>;
  /** Identity patterns (RegExp sources) that may move it or run its actions; local operators always may. */
  admins: string[];
}

export interface TandemConfig {
  /** Absolute path of the file this came from. */
  sourcePath: string;
  clusterName: string;
  node: { id: NodeId; role: NodeRole; priority: number };
  listen: HostPort;
  /** What peers dial; equals listen unless given. */
  advertise: HostPort;
  api: {
    listen: HostPort | null;
    /** Absolute; null: bearer tokens are refused. */
    tokensFile: string | null;
    /** Requests served at once over both listeners; beyond it 429. */
    inflightMax: number;
  };
  /** Absolute. */
  dataDir: string;
  peers: PeerConfig[];
  /** File paths are absolute. */
  security: SecurityConfig;
  acl: AclRule[];
  timings: Timings;
  store: StoreConfig;
  services: ServiceConfig[];
  /** null: this node runs no journal. */
  journal: JournalConfig | null;
  /** null: no blob stores. */
  blob: BlobConfig | null;
  /** null: no provisioning. */
  provision: ProvisionConfig | null;
  log: { level: LogLevel };
}

/** A rule broken across fields; `path` in YAML spelling, `keyOfLast` to point at a key, not its value. */
export interface FieldProblem {
  path: PropertyKey[];
  message: string;
  keyOfLast?: boolean;
}

export type Normalised = { ok: true; config: TandemConfig } | { ok: false; problems: FieldProblem[] };

/** `file` has passed the schema; this checks the rules across fields and builds the TandemConfig. */
export function toTandemConfig(file: ConfigFile, sourcePath: string): Normalised {
  const problems: FieldProblem[] = [];
  const baseDir = dirname(sourcePath);
  const listen = hostPort(file.listen);
  const advertise = file.advertise === undefined ? listen : hostPort(file.advertise);
  if (file.advertise === undefined && isWildcardHost(listen.host)) {
    problems.push({
      path: ["listen"],
      message: "binds every interface, so `advertise` (the host:port peers dial) is required",
    });
  }
  if (isWildcardHost(advertise.host) && file.advertise !== undefined) {
    problems.push({ path: ["advertise"], message: "must be an address peers can dial, not 0.0.0.0 or ::" });
  }
  const apiListen = file.api.listen === null ? null : hostPort(file.api.listen);
  if (apiListen !== null && !isLoopbackHost(apiListen.host)) {
    problems.push({
      path: ["api", "listen"],
      message:
        "must be a loopback address (127.0.0.1, ::1 or localhost): this API is plain HTTP without authentication",
    });
  }
  problems.push(...peerProblems(file, advertise));
  const timings = resolveTimings(file, problems);
  const security = resolveSecurity(file, baseDir, problems);
  const store = resolveStore(file, baseDir, problems);
  const services = resolveServices(file, advertise, baseDir, timings, problems);
  const journal =
    file.journal === undefined ? null : resolveJournal(file.journal, file.cluster_name, baseDir, problems);
  const blob =
    file.blob === undefined
      ? null
      : resolveBlob(file.blob, baseDir, journal?.keyFile ?? null, securityFiles(security), problems);
  const provision = file.provision === undefined ? null : resolveProvision(file.provision, baseDir, problems);
  if (problems.length > 0) return { ok: false, problems };
  const peers = file.peers.map((p) => ({
    id: p.id,
    address: hostPort(p.address),
    role: p.role,
    priority: p.priority,
  }));
  return {
    ok: true,
    config: {
      sourcePath,
      clusterName: file.cluster_name,
      node: { id: file.node.id, role: file.node.role, priority: file.node.priority },
      listen,
      advertise,
      api: {
        listen: apiListen,
        tokensFile: file.api.tokens_file === undefined ? null : resolve(baseDir, file.api.tokens_file),
        inflightMax: file.api.inflight_max,
      },
      dataDir: resolve(baseDir, file.data_dir),
      peers,
      security,
      acl: file.acl ?? defaultAcl(peers.map((p) => p.id)),
      timings,
      store,
      services,
      journal,
      blob,
      provision,
      log: { level: file.log.level },
    },
  };
}

/** The key material a backup holds when asked: this node's TLS key, certificate and CA, or its PSK file. */
function securityFiles(security: SecurityConfig): string[] {
  if (security.mode === "mtls") return [security.keyFile, security.certFile, security.caFile];
  return security.pskFile === undefined ? [] : [security.pskFile];
}

function peerProblems(file: ConfigFile, advertise: HostPort): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const firstById = new Map<string, number>();
  const firstByAddress = new Map<string, number>();
  const selfAddress = `${advertise.host}:${advertise.port}`;
  file.peers.forEach((peer, index) => {
    const address = hostPort(peer.address);
    const addressKey = `${address.host}:${address.port}`;
    if (peer.id === file.node.id) {
      problems.push({
        path: ["peers", index, "id"],
        message: `"${peer.id}" is this node; list only the other nodes`,
      });
    }
    const sameId = firstById.get(peer.id);
    if (sameId !== undefined) {
      problems.push({
        path: ["peers", index, "id"],
        message: `duplicate peer id "${peer.id}" (see peers[${sameId}])`,
      });
    } else firstById.set(peer.id, index);
    if (isWildcardHost(address.host)) {
      problems.push({
        path: ["peers", index, "address"],
        message: "must be an address to dial, not 0.0.0.0 or ::",
      });
    }
    const sameAddress = firstByAddress.get(addressKey);
    if (sameAddress !== undefined) {
      problems.push({ path: ["peers", index, "address"], message: `same address as peers[${sameAddress}]` });
    } else firstByAddress.set(addressKey, index);
    if (addressKey === selfAddress) {
      problems.push({
        path: ["peers", index, "address"],
        message: "is this node's own (advertised) address",
      });
    }
  });
  const hasMember = file.node.role === "member" || file.peers.some((p) => p.role === "member");
  if (!hasMember) problems.push({ path: ["node", "role"], message: "the cluster needs at least one member" });
  return problems;
}

function resolveTimings(file: ConfigFile, problems: FieldProblem[]): Timings {
  const t = file.timings;
  const preset = presetTimings(t.preset);
  const timings: Timings = {
    tickMs: t.tick_ms ?? preset.tickMs,
    heartbeatIntervalMs: t.heartbeat_interval_ms ?? preset.heartbeatIntervalMs,
    suspectAfterMissed: t.suspect_after_missed ?? preset.suspectAfterMissed,
    downAfterMs: t.down_after_ms ?? preset.downAfterMs,
    electionTimeoutMs: t.election_timeout_ms ?? preset.electionTimeoutMs,
    leaderHeartbeatMs: t.leader_heartbeat_ms ?? preset.leaderHeartbeatMs,
    leaseMs: t.lease_ms ?? preset.leaseMs,
  };
  for (const p of validateTimings(timings)) {
    const key = timingsYamlKeys[p.key];
    const written = t[key] !== undefined;
    // A value from the preset is not in the file: say so (the position falls back to the timings block).
    const message = written ? p.message : `${p.message} (value from preset "${t.preset}")`;
    problems.push({ path: ["timings", key], message });
  }
  return timings;
}

function resolveSecurity(file: ConfigFile, baseDir: string, problems: FieldProblem[]): SecurityConfig {
  const s = file.security;
  if (s.mode === "mtls") {
    const id = file.node.id;
    return {
      mode: "mtls",
      caFile: resolve(baseDir, s.ca_file ?? "tls/ca.pem"),
      certFile: resolve(baseDir, s.cert_file ?? `tls/${id}.pem`),
      keyFile: resolve(baseDir, s.key_file ?? `tls/${id}-key.pem`),
    };
  }
  if ((s.psk_file === undefined) === (s.psk_env === undefined)) {
    problems.push({ path: ["security"], message: "psk mode needs exactly one of psk_file or psk_env" });
  }
  return {
    mode: "psk",
    ...(s.psk_file === undefined ? {} : { pskFile: resolve(baseDir, s.psk_file) }),
    ...(s.psk_env === undefined ? {} : { pskEnv: s.psk_env }),
  };
}

function resolveStore(file: ConfigFile, baseDir: string, problems: FieldProblem[]): StoreConfig {
  // min_acks is not held to the configured peers: they only bootstrap, and the cluster may grow (a node
  // started with --join lists none). A request asking for more acks than the node has peers is refused.
  const s = file.store;
  const m = s.materialise;
  const dir = m ? resolve(baseDir, m.dir) : null;
  const prefixCheck = m && m.prefix !== "" ? validateStorePath(m.prefix.replace(/\/$/, "")) : null;
  if (prefixCheck && !prefixCheck.ok) {
    problems.push({ path: ["store", "materialise", "prefix"], message: prefixCheck.reason });
  }
  if (dir !== null && dir === resolve(baseDir, file.data_dir)) {
    problems.push({ path: ["store", "materialise", "dir"], message: "must not be the data_dir itself" });
  }
  return {
    readOnly: s.read_only,
    minAcks: s.min_acks ?? Math.min(1, file.peers.length),
    writeTimeoutMs: s.write_timeout_ms,
    antiEntropyIntervalMs: s.anti_entropy_interval_ms,
    tombstoneHorizonMs: s.tombstone_horizon_ms,
    valueBytesMax: s.value_bytes_max,
    materialise:
      m && dir
        ? {
            dir,
            prefix: m.prefix,
            fileMode: Number.parseInt(m.file_mode, 8),
            dirMode: Number.parseInt(m.dir_mode, 8),
            ...(m.uid === undefined ? {} : { uid: m.uid }),
            ...(m.gid === undefined ? {} : { gid: m.gid }),
            hooks: m.hooks.map((h) => ({
              prefix: h.prefix,
              command: h.command,
              debounceMs: h.debounce_ms,
              timeoutMs: h.timeout_ms,
            })),
          }
        : null,
  };
}

function resolveJournal(
  j: JournalFile,
  clusterName: string,
  baseDir: string,
  problems: FieldProblem[],
): JournalConfig {
  if (j.retry_max_ms < j.retry_base_ms) {
    problems.push({
      path: ["journal", "retry_max_ms"],
      message: `must be at least retry_base_ms (${j.retry_base_ms})`,
    });
  }
  for (const type of Object.keys(j.handlers)) {
    if (isHandlerName(type)) continue;
    problems.push({
      path: ["journal", "handlers", type],
      message: 'expected an entry type (a-z 0-9 . _ -, up to 64) or "*" for every type without its own',
      keyOfLast: true,
    });
  }
  return {
    keyFile: resolve(baseDir, j.key_file),
    queue: resolveQueue(j.queue, clusterName, baseDir, problems),
    handlers: Object.fromEntries(
      Object.entries(j.handlers).map(([type, h]): [string, JournalHandlerConfig] => [
        type,
        "exec" in h
          ? { kind: "exec", argv: h.exec, timeoutMs: h.timeout_ms }
          : {
              kind: "webhook",
              url: h.webhook,
              timeoutMs: h.timeout_ms,
              ...(h.batch === undefined ? {} : { batchMax: h.batch }),
            },
      ]),
    ),
    steps: Object.entries(j.steps).map(([name, step]) => ({
      name,
      argv: step.exec,
      types: step.types ?? null,
      timeoutMs: step.timeout_ms,
    })),
    maxAttempts: j.max_attempts,
    retryBaseMs: j.retry_base_ms,
    retryMaxMs: j.retry_max_ms,
    concurrency: j.concurrency,
    outboxRetentionMs: parseRetentionMs(j.outbox_retention),
  };
}

function resolveQueue(
  q: JournalFile["queue"],
  clusterName: string,
  baseDir: string,
  problems: FieldProblem[],
): JournalQueueConfig {
  if (q.type === "mesh") return q;
  if (q.type === "pubsub")
    return { type: "pubsub", project: q.project, topic: q.topic ?? `tandem-${clusterName}-journal` };
  if (
    (q.type === "redis" || q.type === "amqp") &&
    q.password_file !== undefined &&
    q.password_env !== undefined
  ) {
    problems.push({
      path: ["journal", "queue", "password_env"],
      message: "give password_file or password_env, not both",
    });
  }
  if (q.type === "amqp") {
    return {
      type: "amqp",
      url: q.url,
      prefix: `tandem.${clusterName}.journal`,
      passwordFile: q.password_file === undefined ? null : resolve(baseDir, q.password_file),
      passwordEnv: q.password_env ?? null,
    };
  }
  if (q.type === "redis") {
    return {
      type: "redis",
      url: q.url,
      stream: q.stream ?? `tandem:${clusterName}:journal`,
      passwordFile: q.password_file === undefined ? null : resolve(baseDir, q.password_file),
      passwordEnv: q.password_env ?? null,
    };
  }
  if (q.token_file !== undefined && q.token_env !== undefined) {
    problems.push({
      path: ["journal", "queue", "token_env"],
      message: "give token_file or token_env, not both",
    });
  }
  // A cluster name may hold "." (a subject separator in NATS): the stream and subjects spell it "_".
  const name = clusterName.replace(/\./g, "_");
  return {
    type: "nats",
    servers: typeof q.url === "string" ? [q.url] : q.url,
    stream: q.stream ?? `TANDEM_${name}`,
    subjectPrefix: `tandem.${name}.journal`,
    tokenFile: q.token_file === undefined ? null : resolve(baseDir, q.token_file),
    tokenEnv: q.token_env ?? null,
  };
}

/** The nodes this file knows (itself and its peers) that may run services, with the host they advertise. */
function serviceNodes(file: ConfigFile, advertise: HostPort): Array<{ id: NodeId; host: string }> {
  const nodes = file.node.role === "witness" ? [] : [{ id: file.node.id, host: advertise.host }];
  for (const peer of file.peers) {
    const address = parseHostPort(peer.address);
    if (peer.role !== "witness" && address.ok) nodes.push({ id: peer.id, host: address.value.host });
  }
  return nodes;
}

function resolveServices(
  file: ConfigFile,
  advertise: HostPort,
  baseDir: string,
  timings: Timings,
  problems: FieldProblem[],
): ServiceConfig[] {
  const firstByName = new Map<string, number>();
  const known = serviceNodes(file, advertise);
  return file.services.map((s, index) => {
    const at = (...path: PropertyKey[]) => ["services", index, ...path];
    const first = firstByName.get(s.name);
    if (first !== undefined) {
      problems.push({ path: at("name"), message: `duplicate service "${s.name}" (see services[${first}])` });
    } else firstByName.set(s.name, index);
    if (s.nodes !== undefined) {
      const eligible = s.nodes;
      s.prefer.forEach((id, i) => {
        if (!eligible.includes(id)) {
          problems.push({ path: at("prefer", i), message: `"${id}" is not in this service's nodes` });
        }
      });
    }
    if (s.failover_after_ms < timings.downAfterMs) {
      problems.push({
        path: at("failover_after_ms"),
        message: `must be at least timings.down_after_ms (${timings.downAfterMs}): a peer is not down before that`,
      });
    }
    const w = s.restore_window;
    return {
      name: s.name,
      description: s.description,
      nodes: s.nodes ?? null,
      prefer: s.prefer,
      failover: s.failover,
      failoverAfterMs: s.failover_after_ms,
      stopMustSucceed: s.stop_must_succeed,
      restoreWindow:
        w === undefined ? null : { cron: w.cron, lengthMs: parseDurationMs(w.length), timezone: w.timezone },
      drivers: s.drivers.map((d, i): DriverConfig => {
        if (d.type === "vip") return toVipDriverConfig(d);
        if (d.type === "dns") {
          const dns = toDnsDriverConfig(d, baseDir);
          const eligible = known.filter((n) => s.nodes === undefined || s.nodes.includes(n.id));
          problems.push(...dnsAddressProblems(dns, eligible, at("drivers", i)));
          return dns;
        }
        return {
          type: "exec",
          start: d.start,
          stop: d.stop,
          status: d.status ?? null,
          timeoutMs: d.timeout_ms,
        };
      }),
      health: s.health === undefined ? null : healthCheck(s.health),
      actions: Object.fromEntries(
        Object.entries(s.actions).map(([name, a]) => [name, { run: a.run, timeoutMs: a.timeout_ms }]),
      ),
      admins: s.admins,
    };
  });
}

/** Each node that may run it needs an address for its record, and one record type serves them all. */
function dnsAddressProblems(
  dns: DnsDriverConfig,
  nodes: ReadonlyArray<{ id: NodeId; host: string }>,
  path: PropertyKey[],
): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const families = new Map<number, NodeId>();
  for (const node of nodes) {
    const choice = dnsDriverAddress(dns, node.id, node.host);
    if (!choice.ok) problems.push({ path: [...path, "addresses"], message: choice.reason });
    else if (!families.has(isIP(choice.address))) families.set(isIP(choice.address), node.id);
  }
  if (families.size > 1) {
    problems.push({
      path: [...path, "addresses"],
      message: `${[...families.values()].join(" and ")} would get records of different types (A and AAAA): give every node an address of one family`,
    });
  }
  return problems;
}

function healthCheck(h: NonNullable<ServiceFile["health"]>): HealthCheckConfig {
  const check: HealthCheckConfig["check"] | null =
    h.exec !== undefined
      ? { type: "exec", argv: h.exec }
      : h.http !== undefined
        ? { type: "http", url: h.http }
        : null;
  if (check === null) throw new Error("a health check passed the schema without exec or http");
  return {
    check,
    intervalMs: h.interval_ms,
    timeoutMs: h.timeout_ms,
    failures: h.failures,
  };
}

/** The schema already checked the text, so a failure here is a bug. */
function hostPort(text: string): HostPort {
  const parsed = parseHostPort(text);
  if (!parsed.ok) throw new Error(`address passed the schema but does not parse: ${parsed.reason}`);
  return parsed.value;
}
