// The version printed by `tandem --version` and served in status: package.json is the single source.
import packageJson from "../../package.json" with { type: "json" };

export const VERSION: string = packageJson.version;
