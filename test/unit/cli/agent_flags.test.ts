import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { AGENT_NODE_FLAGS } from "../../../src/cli/dev_cluster.ts";

test("agent V8 flags: the installed binary's shebang runs node with exactly AGENT_NODE_FLAGS", () => {
  const shebang = readFileSync(new URL("../../../bin/tandem.js", import.meta.url), "utf8").split("\n")[0];
  assert.equal(shebang, `#!/usr/bin/env -S node ${AGENT_NODE_FLAGS.join(" ")}`);
});
