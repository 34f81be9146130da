// A dev cluster's configs (src/cli/dev_cluster.ts) moved onto a NetnsLab's hosts: each node listens on its
// namespace's address and dials its peers at theirs. The mesh checks the certificate CN against the node
// id, not the dialed address, so the dev certificates work unchanged.
import { readFileSync, writeFileSync } from "node:fs";
import { parse, stringify } from "yaml";
import type { DevNode } from "../../src/cli/dev_cluster.ts";
import type { NetnsLab } from "./netns.ts";

export function placeInNamespaces(lab: NetnsLab, nodes: readonly DevNode[]): void {
  const meshAddress = (id: string) => {
    const node = nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no dev node ${id}`);
    return `${lab.host(id).address}:${node.meshPort}`;
  };
  for (const node of nodes) {
    const config = parse(readFileSync(node.configPath, "utf8")) as {
      listen: string;
      peers: Array<{ id: string; address: string }>;
    };
    config.listen = meshAddress(node.id);
    for (const peer of config.peers) peer.address = meshAddress(peer.id);
    writeFileSync(node.configPath, stringify(config));
  }
}
