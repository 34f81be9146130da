// `tandem agent` started without the agent's V8 flags re-executes itself with them, in the same process (the
// pid a supervisor holds still names the agent). bin/tandem.js only imports the same main module, built.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { AGENT_MALLOC_TUNABLES, AGENT_NODE_FLAGS } from "../../src/cli/agent_flags.ts";
import { collectLines } from "../support/child_lines.ts";
import { CLI_ENTRY, ClusterHarness } from "../support/cluster_harness.ts";

describe("agent exec: `tandem agent` runs with the agent's V8 flags", { timeout: 120_000 }, () => {
  let harness: ClusterHarness;
  before(async () => {
    harness = await ClusterHarness.create({ nodes: 1, security: "psk" });
  });
  after(() => harness.dispose());

  it("started as `node src/cli/main.ts agent`: same pid, the flags on its command line", async () => {
    const args = [CLI_ENTRY.source, "agent", "--config", harness.node("n1").configPath];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
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
      assert.deepEqual(cmdline, [process.execPath, ...AGENT_NODE_FLAGS, ...args]);
      // Started with them (the kernel's copy of its environment), though its own env no longer has them.
      const environ = readFileSync(`/proc/${child.pid}/environ`, "utf8").split("\0");
      assert.ok(environ.includes(`GLIBC_TUNABLES=${AGENT_MALLOC_TUNABLES}`), environ.join("\n"));
    } finally {
      child.kill("SIGTERM");
      await exited;
    }
  });
});
