// The commented starter tandem.yml that `tandem init` writes. Every key is present (or shown commented
// out) with a line saying what it does, and the result passes the loader unchanged.
import type { NodeId } from "../core/types.ts";
import { formatHostPort, type HostPort } from "./address.ts";
import { lanTimings } from "./timings.ts";

export interface StarterOptions {
  id: NodeId;
  peers: readonly { id: NodeId; address: HostPort }[];
  security: "mtls" | "psk";
  /** What peers dial; when given the node binds every interface on its port, else loopback only. */
  advertise?: HostPort;
}

export const listenPortDefault = 7400;

export function starterConfigText(o: StarterOptions): string {
  const port = o.advertise?.port ?? listenPortDefault;
  const t = lanTimings();
  const lines = [
    "# Tandem node configuration. Reference: docs/configuration.md; check with `tandem config check`.",
    "",
    "# Every node of one cluster uses the same name; peers with another name are refused.",
    "cluster_name: tandem",
    "",
    "node:",
    "  # Stable id of this node: its certificate CN and PSK identity. [a-z0-9][a-z0-9._-]{0,62}",
    `  id: ${o.id}`,
    "  # member: may lead and run services. witness: votes only (the tie-breaker of a two-node pair).",
    "  role: member",
    "  # 0..1000; among healthy members the highest priority leads.",
    "  priority: 100",
    "",
    "# Mesh links and the TLS API: host:port to bind.",
    ...(o.advertise === undefined
      ? [
          `listen: "127.0.0.1:${port}"`,
          "# What peers dial. Required when listen binds 0.0.0.0 or ::; defaults to listen.",
          `# advertise: "10.0.0.1:${port}"`,
        ]
      : [
          `listen: "0.0.0.0:${port}"`,
          "# What peers dial. Required when listen binds 0.0.0.0 or ::; defaults to listen.",
          `advertise: ${JSON.stringify(formatHostPort(o.advertise))}`,
        ]),
    "",
    "api:",
    "  # Plain-HTTP API for operators on this machine: loopback only; null disables it.",
    `  listen: "127.0.0.1:${port + 1}"`,
    "",
    "# State (election term and vote, store, journal). Relative paths resolve against this file's folder.",
    "data_dir: data",
    "",
    "# Every OTHER node of the cluster (not this one). role and priority default to member and 100.",
    ...peerLines(o.peers),
    "",
    ...securityLines(o.security, o.id),
    "",
    "# Who may call which TLS API path: first rule whose path matches decides; regexes, anchor them yourself.",
    "# Default when absent: /api/internal/ for peers only, everything else for any authenticated client.",
    "# acl:",
    `#   - { path: "^/api/internal/", cn: "^(${o.peers.map((p) => p.id).join("|") || "n2|n3"})$" }`,
    '#   - { path: "^/", cn: ".*" }',
    "",
    "timings:",
    "  # lan (one site), wan (several sites) or local (one machine); fields below override the preset.",
    "  preset: lan",
    "  # Granularity of every timer; every duration below must be a multiple of it.",
    `  # tick_ms: ${t.tickMs}`,
    "  # Failure-detector pings to every peer.",
    `  # heartbeat_interval_ms: ${t.heartbeatIntervalMs}`,
    "  # A peer is suspect after this many missed pings ...",
    `  # suspect_after_missed: ${t.suspectAfterMissed}`,
    "  # ... and down after this long without one.",
    `  # down_after_ms: ${t.downAfterMs}`,
    "  # Followers campaign after a random time in [T, 2T) without hearing a leader.",
    `  # election_timeout_ms: ${t.electionTimeoutMs}`,
    "  # The leader's heartbeat; at most election_timeout_ms / 2.",
    `  # leader_heartbeat_ms: ${t.leaderHeartbeatMs}`,
    "  # How long a leader acts on a quorum's last acknowledgement; at most 0.9 * (election_timeout_ms - tick_ms).",
    `  # lease_ms: ${t.leaseMs}`,
    "",
    "log:",
    "  # trace | debug | info | warn | error",
    "  level: info",
  ];
  return `${lines.join("\n")}\n`;
}

function peerLines(peers: StarterOptions["peers"]): string[] {
  if (peers.length === 0) {
    return ["peers: []", '#  - { id: n2, address: "10.0.0.2:7400", role: member, priority: 100 }'];
  }
  return [
    "peers:",
    ...peers.map((p) => `  - { id: ${p.id}, address: ${JSON.stringify(formatHostPort(p.address))} }`),
  ];
}

function securityLines(mode: StarterOptions["security"], id: NodeId): string[] {
  const header = [
    "# How nodes and TLS API clients authenticate; both modes are TLS 1.3. See docs/security.md.",
    "security:",
  ];
  if (mode === "mtls") {
    return [
      ...header,
      "  # mtls: certificates from the cluster CA (`tandem tls ca`, then `tandem tls cert <id>` per node).",
      "  mode: mtls",
      "  # Paths relative to this file; these are the defaults (cert and key named after node.id).",
      "  ca_file: tls/ca.pem",
      `  cert_file: tls/${id}.pem`,
      `  key_file: tls/${id}-key.pem`,
    ];
  }
  return [
    ...header,
    "  # psk: one shared key (`tandem tls psk`), the same file on every node, mode 0600.",
    "  mode: psk",
    "  # Exactly one of psk_file (path relative to this file) or psk_env (environment variable name).",
    "  psk_file: psk.key",
    "  # psk_env: TANDEM_PSK",
  ];
}
