import assert from "node:assert/strict";
import { test } from "node:test";
import { pino } from "pino";
import { ShutdownStack } from "../../../src/shell/index.ts";

const silent = pino({ level: "silent" });

test("shutdown stack: parts stop in reverse order of start, each awaited before the next", async () => {
  const stack = new ShutdownStack(silent);
  const stopped: string[] = [];
  stack.push("lock", () => stopped.push("lock"));
  stack.push("mesh", async () => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    stopped.push("mesh");
  });
  stack.push("store", () => stopped.push("store"));
  assert.deepEqual(stack.names, ["lock", "mesh", "store"]);
  await stack.unwind();
  assert.deepEqual(stopped, ["store", "mesh", "lock"]);
});

test("shutdown stack: a stop that throws does not keep the parts below it running", async () => {
  const stack = new ShutdownStack(silent);
  const stopped: string[] = [];
  stack.push("lock", () => stopped.push("lock"));
  stack.push("mesh", () => {
    throw new Error("close failed");
  });
  stack.push("store", () => Promise.reject(new Error("flush failed")));
  await stack.unwind();
  assert.deepEqual(stopped, ["lock"]);
});

test("shutdown stack: unwinding twice stops each part once; nothing is added while unwinding", async () => {
  const stack = new ShutdownStack(silent);
  let stops = 0;
  stack.push("mesh", () => stops++);
  await Promise.all([stack.unwind(), stack.unwind()]);
  await stack.unwind();
  assert.equal(stops, 1);
  assert.throws(() => stack.push("late", () => undefined), /unwinding/);
});
