import assert from "node:assert/strict";
import { test } from "node:test";
import { ServiceLog } from "../../../src/services/service_log.ts";

const outcome = {
  exitCode: 3,
  signal: null,
  timedOut: false,
  error: null,
  durationMs: 12,
  stdout: "a\nb\n",
  stderr: "",
};

test("service log: output line by line with how a command ended; the last lines kept; pages with the seq to resume after", () => {
  const log = new ServiceLog(4);
  log.addOutcome("action hello", outcome);
  assert.deepEqual(
    log.after(0).lines.map((l) => [l.seq, l.source, l.stream, l.text]),
    [
      [1, "action hello", "stdout", "a"],
      [2, "action hello", "stdout", "b"],
      [3, "action hello", "tandem", "exit 3"],
    ],
  );
  log.add("health", "tandem", "x\ny");
  assert.deepEqual(
    log.after(0).lines.map((l) => l.seq),
    [2, 3, 4, 5],
    "capacity 4: the oldest line is gone",
  );
  assert.deepEqual(
    [log.after(0, 2).lines.map((l) => l.seq), log.after(0, 2).next],
    [[2, 3], 3],
    "a full page resumes after its last line",
  );
  assert.deepEqual(log.after(3, 2), { lines: log.after(3).lines, next: 5 });
  assert.deepEqual(log.after(5), { lines: [], next: 5 });
});
