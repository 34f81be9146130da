import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  AGENT_MALLOC_TUNABLES,
  AGENT_NODE_FLAGS,
  agentEnv,
  agentExecArgv,
  agentNodeFlags,
  hasAgentFlags,
  runsAgentCommand,
  withoutAgentMallocTunables,
} from "../../../src/cli/agent_flags.ts";

test("agent V8 flags: only `tandem agent` is re-executed with them", () => {
  const cases: Array<[string[], boolean]> = [
    [["agent"], true],
    [["agent", "--config", "/etc/tandem/tandem.yml"], true],
    [["agent", "--help"], false],
    [["agent", "-h"], false],
    [["status", "--help"], false],
    [["status"], false],
    [["dev", "--nodes", "3"], false],
    [["--version"], false],
    [[], false],
  ];
  for (const [args, expected] of cases) {
    assert.equal(runsAgentCommand(["/usr/bin/node", "/usr/bin/tandem", ...args]), expected, args.join(" "));
  }
});

test("agent V8 flags: the re-exec puts them first, keeps the process's own Node options, script and arguments", () => {
  const argv = agentExecArgv(["/node", "/bin/tandem.js", "agent", "-c", "n1.yml"], ["--inspect"], "/node");
  assert.deepEqual(argv, [
    "/node",
    ...AGENT_NODE_FLAGS,
    "--inspect",
    "/bin/tandem.js",
    "agent",
    "-c",
    "n1.yml",
  ]);
  assert.equal(hasAgentFlags(argv.slice(1, -4)), true);
  assert.equal(hasAgentFlags(["--inspect", ...AGENT_NODE_FLAGS.slice(1)]), false);
});

test("agent V8 flags: TANDEM_AGENT_NODE_FLAGS replaces the list; empty means none, so no re-exec", () => {
  assert.deepEqual(agentNodeFlags({}), AGENT_NODE_FLAGS);
  assert.deepEqual(agentNodeFlags({ TANDEM_AGENT_NODE_FLAGS: " --max-semi-space-size=2  --opt " }), [
    "--max-semi-space-size=2",
    "--opt",
  ]);
  assert.deepEqual(agentNodeFlags({ TANDEM_AGENT_NODE_FLAGS: "" }), []);
  assert.equal(hasAgentFlags([], agentNodeFlags({ TANDEM_AGENT_NODE_FLAGS: "" })), true);
  assert.deepEqual(agentExecArgv(["/node", "/t.js", "agent"], [], "/node", ["--opt"]), [
    "/node",
    "--opt",
    "/t.js",
    "agent",
  ]);
});

test("agent V8 flags: the installed binary's shebang carries none (every command would get them)", () => {
  const shebang = readFileSync(new URL("../../../bin/tandem.js", import.meta.url), "utf8").split("\n")[0];
  assert.equal(shebang, "#!/usr/bin/env node");
});

test("agent malloc tunables: set for the agent unless the operator set their own; gone once it runs", () => {
  assert.deepEqual(agentEnv({ PATH: "/bin" }), { PATH: "/bin", GLIBC_TUNABLES: AGENT_MALLOC_TUNABLES });
  const own = { GLIBC_TUNABLES: "glibc.malloc.arena_max=4" };
  assert.equal(agentEnv(own), own);
  // What the agent's services and hooks inherit: the operator's environment.
  const running: NodeJS.ProcessEnv = { PATH: "/bin", GLIBC_TUNABLES: AGENT_MALLOC_TUNABLES };
  withoutAgentMallocTunables(running);
  assert.deepEqual(running, { PATH: "/bin" });
  withoutAgentMallocTunables(own);
  assert.deepEqual(own, { GLIBC_TUNABLES: "glibc.malloc.arena_max=4" });
});
