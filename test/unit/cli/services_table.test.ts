import assert from "node:assert/strict";
import { test } from "node:test";
import { renderServices } from "../../../src/cli/services_table.ts";

test("tandem services: a row per service; an unhealthy owner and the detail are shown; control bytes escaped", () => {
  const text = renderServices({
    term: 3,
    services: [
      {
        name: "db",
        owner: null,
        state: null,
        since: null,
        fence: null,
        code: "no-node",
        reason: "no node can run it",
        detail: "",
        healthy: null,
      },
      {
        name: "web",
        owner: "n1",
        state: "running",
        since: "2026-12-07T02:00:00.000Z",
        fence: "3.1",
        code: "running",
        reason: "runs on n1",
        detail: "health check failing: GET http://127.0.0.1/\u001b[2J: 503",
        healthy: false,
      },
    ],
    drained: ["n2"],
  });
  const lines = text.split("\n");
  assert.equal(lines[0], "placed by the leader of term 3");
  assert.equal(lines[1], "drained: n2");
  assert.match(lines[4] ?? "", /^db\s+-\s+-\s+-\s+-\s+no node can run it$/);
  assert.match(
    lines[5] ?? "",
    /^web\s+n1\s+running \(unhealthy\)\s+2026-12-07T02:00:00.000Z\s+3\.1\s+runs on n1 \(health check failing: /,
  );
  assert.ok(!text.includes("\u001b"), "escape sequences from a server never reach the terminal");
  assert.match(renderServices({ term: 0, services: [], drained: [] }), /no table from a leader yet/);
});
