import assert from "node:assert/strict";
import { test } from "node:test";
import { Prng } from "../../src/core/prng.ts";
import type { Envelope } from "../../src/core/types.ts";
import { Network, PartitionSymmetry, quietNetworkOptions } from "./network.ts";

const ids = ["n1", "n2", "n3"];

function drain(network: Network<string>, untilUnits: number): Envelope<string>[] {
  const out: Envelope<string>[] = [];
  for (let e = network.popDue(untilUnits); e !== undefined; e = network.popDue(untilUnits)) out.push(e);
  return out;
}

test("sim: network: a one-way partition silences the side but lets it hear", () => {
  const network = new Network<string>(ids, quietNetworkOptions(10, 10), new Prng(1));
  network.partition(["n1"], PartitionSymmetry.OneWay);
  network.send({ from: "n1", to: "n2", message: "out" }, 0);
  network.send({ from: "n2", to: "n1", message: "in" }, 0);
  network.send({ from: "n2", to: "n3", message: "side" }, 0);
  assert.deepEqual(
    drain(network, 100).map((e) => e.message),
    ["in", "side"],
  );
  assert.equal(network.stats.droppedPartition, 1);
});

test("sim: network: messages in flight when a path is cut are lost on arrival", () => {
  const network = new Network<string>(ids, quietNetworkOptions(50, 50), new Prng(1));
  network.send({ from: "n1", to: "n2", message: "late" }, 0);
  network.partition(["n1"], PartitionSymmetry.Symmetric);
  assert.deepEqual(drain(network, 100), []);
  network.heal();
  network.send({ from: "n1", to: "n2", message: "after" }, 100);
  assert.deepEqual(
    drain(network, 200).map((e) => e.message),
    ["after"],
  );
});

test("sim: network: a clogged path holds messages until it unclogs, losing none", () => {
  const network = new Network<string>(ids, quietNetworkOptions(10, 10), new Prng(1));
  network.clog("n1", "n2", 5000);
  network.send({ from: "n1", to: "n2", message: "held" }, 0);
  assert.deepEqual(drain(network, 4999), []);
  assert.deepEqual(
    drain(network, 5000).map((e) => e.message),
    ["held"],
  );
});

test("sim: network: a path holds at most pathCapacityMax messages in flight", () => {
  const options = { ...quietNetworkOptions(10, 10), pathCapacityMax: 3 };
  const network = new Network<string>(ids, options, new Prng(1));
  for (let i = 0; i < 5; i++) network.send({ from: "n1", to: "n2", message: `m${i}` }, 0);
  assert.equal(network.inflight, 3);
  assert.equal(network.stats.droppedCapacity, 2);
});

test("sim: network: random delays reorder, and the same seed reorders the same way", () => {
  const order = (seed: number) => {
    const network = new Network<string>(ids, quietNetworkOptions(0, 1000), new Prng(seed));
    for (let i = 0; i < 20; i++) network.send({ from: "n1", to: "n2", message: `m${i}` }, i);
    return drain(network, 1e9).map((e) => e.message);
  };
  const first = order(7);
  assert.equal(first.length, 20);
  assert.notDeepEqual(
    first,
    [...first].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))),
  );
  assert.deepEqual(order(7), first);
});

test("sim: network: loss and duplication follow their rates", () => {
  const options = {
    ...quietNetworkOptions(0, 0),
    lossProbability: 0.3,
    duplicateProbability: 0.2,
    pathCapacityMax: 1e6,
  };
  const network = new Network<string>(ids, options, new Prng(3));
  for (let i = 0; i < 10_000; i++) network.send({ from: "n1", to: "n2", message: "x" }, 0);
  assert.ok(Math.abs(network.stats.droppedLoss / 10_000 - 0.3) < 0.03);
  assert.ok(Math.abs(network.stats.duplicated / 7_000 - 0.2) < 0.03);
});
