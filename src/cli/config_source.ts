// Where a command finds its config: --config, else $TANDEM_CONFIG, else ./tandem.yml.
import { resolve } from "node:path";

export const DEFAULT_CONFIG_FILE = "tandem.yml";

export function configPathFrom(option: string | undefined): string {
  return resolve(option ?? process.env.TANDEM_CONFIG ?? DEFAULT_CONFIG_FILE);
}
