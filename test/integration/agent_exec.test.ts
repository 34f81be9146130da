// `tandem agent` started without the agent's V8 flags re-executes itself with them, in the same process (the
// pid a supervisor holds still names the agent).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { AGENT_NODE_FLAGS } from "../../src/cli/agent_flags.ts";
import { collectLines } from "../support/child_lines.ts";
import { CLI_ENTRY, ClusterHarness } from "../support/cluster_harness.ts";

const installedBin = fileURLToPath(new URL("../../bin/tandem.js", import.meta.url));
const builtExec = fileURLToPath(new URL("../../dist/src/cli/agent_flags.js", import.meta.url));

describe("agent exec: `tandem agent` runs with the agent's V8 flags", { timeout: 120_000 }, () => {
  let harness: ClusterHarness;
  before(async () => {
    harness = await ClusterHarness.create({ nodes: 1, security: "psk" });
  });
  after(() => harness.dispose());

  const entries: Array<[string, string, boolean]> = [
    ["the sources (npm run tandem -- agent)", CLI_ENTRY.source, false],
    ["the installed bin/tandem.js", installedBin, !existsSync(builtExec)],
  ];
  for (const [name, entry, noBuild] of entries) {
    it(`${name}: same pid, flags on its command line`, {
      skip: noBuild && "no build (npm run build)",
    }, async () => {
      const child = spawn(process.execPath, [entry, "agent", "--config", harness.node("n1").configPath], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      const exited = once(child, "exit");
      const lines: string[] = [];
      collectLines(child, lines);
      try {
        const deadline = Date.now() + 30_000;
        while (!lines.some((l) => l.includes('"msg":"agent started"'))) {
          assert.ok(
            Date.now() < deadline && child.exitCode === null,
            `no "agent started":\n${lines.join("\n")}`,
          );
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, "utf8").split("\0").filter(Boolean);
        assert.deepEqual(cmdline.slice(1, 1 + AGENT_NODE_FLAGS.length), [...AGENT_NODE_FLAGS]);
        assert.deepEqual(cmdline.slice(-4), [entry, "agent", "--config", harness.node("n1").configPath]);
      } finally {
        child.kill("SIGTERM");
        await exited;
      }
    });
  }
});
