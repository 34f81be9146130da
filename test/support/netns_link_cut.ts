// One failed link between two NetnsLab hosts, both directions, every other link untouched: nftables rules in
// both hosts' namespaces drop what goes to or comes from the other one. Each cut is a table of its own, so
// healing it deletes exactly that table; deleting the namespaces (lab.dispose) removes what is left.
import { execFileSync } from "node:child_process";
import type { NetnsLab } from "./netns.ts";

const commandTimeoutMs = 5_000;

function nft(lab: NetnsLab, host: string, args: string[], input?: string): void {
  execFileSync("ip", ["netns", "exec", lab.host(host).namespace, "nft", ...args], {
    input,
    stdio: ["pipe", "ignore", "pipe"],
    timeout: commandTimeoutMs,
  });
}

function tableName(a: string, b: string): string {
  return `tandem_cut_${[a, b].sort().join("_")}`.replace(/[^A-Za-z0-9_]/g, "_");
}

/** Drops every packet between hosts `a` and `b`, in both directions. */
export function cutLink(lab: NetnsLab, a: string, b: string): void {
  const table = tableName(a, b);
  for (const [self, other] of [
    [a, b],
    [b, a],
  ] as const) {
    const address = lab.host(other).address;
    const rules = [
      `table inet ${table} {`,
      "  chain input {",
      "    type filter hook input priority 0; policy accept;",
      `    ip saddr ${address} drop`,
      "  }",
      "  chain output {",
      "    type filter hook output priority 0; policy accept;",
      `    ip daddr ${address} drop`,
      "  }",
      "}",
      "",
    ].join("\n");
    nft(lab, self, ["-f", "-"], rules);
  }
}

/** Removes the cut between `a` and `b`. */
export function healLink(lab: NetnsLab, a: string, b: string): void {
  for (const host of [a, b]) nft(lab, host, ["delete", "table", "inet", tableName(a, b)]);
}
