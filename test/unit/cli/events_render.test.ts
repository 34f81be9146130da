import assert from "node:assert/strict";
import { test } from "node:test";
import { renderEvent } from "../../../src/cli/commands/events.ts";

test("tandem events: one line per event, fields as key=value, quoted when they need it, control bytes escaped", () => {
  const line = renderEvent({
    id: "n1.1:7",
    seq: 7,
    time: "2026-12-07T02:00:00.000Z",
    kind: "placement",
    service: "web",
    from: null,
    to: "n2",
    reason: "n1 unreachable for 3000 ms: moved to n2\u001b[2J",
  });
  assert.equal(
    line,
    '2026-12-07T02:00:00.000Z placement service=web from=null to=n2 reason="n1 unreachable for 3000 ms: moved to n2\\u001b[2J"',
  );
  assert.ok(!line.includes("\u001b"));
});
