// Edits of `tandem dev` config files for tests that make nodes disagree or rank them: the YAML is parsed,
// changed and written back (comments are not kept).
import { readFileSync, writeFileSync } from "node:fs";
import { parse, stringify } from "yaml";

export interface DevConfig {
  node: { id: string; priority: number };
  peers: Array<{ id: string; address: string; role: string; priority: number }>;
  [key: string]: unknown;
}

export function editConfigFile(path: string, edit: (config: DevConfig) => void): void {
  const config = parse(readFileSync(path, "utf8")) as DevConfig;
  edit(config);
  writeFileSync(path, stringify(config));
}

/** Sets `id`'s priority in every given config (its own and its peers' entries), so that all lists agree. */
export function setPriority(configPaths: readonly string[], id: string, priority: number): void {
  for (const path of configPaths) {
    editConfigFile(path, (config) => {
      if (config.node.id === id) config.node.priority = priority;
      for (const peer of config.peers) if (peer.id === id) peer.priority = priority;
    });
  }
}
