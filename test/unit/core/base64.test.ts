import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeBase64Strict } from "../../../src/core/base64.ts";
import { Prng } from "../../../src/core/prng.ts";

test("base64: canonical padded standard base64 decodes; anything else is refused", () => {
  assert.deepEqual(decodeBase64Strict(""), Buffer.alloc(0));
  assert.deepEqual(decodeBase64Strict("aGk="), Buffer.from("hi"));
  assert.deepEqual(decodeBase64Strict("+/8="), Buffer.from([0xfb, 0xff]));
  for (const bad of ["aGk", "aGk==", "aG k=", "aGk=\n", "a-_=", "aGl=", "====", "aGk=aGk=", "\u00e9aGk="]) {
    assert.equal(decodeBase64Strict(bad), null, JSON.stringify(bad));
  }
});

test("base64: every byte string round-trips (seeded random values)", () => {
  const rng = new Prng("base64");
  for (let i = 0; i < 500; i++) {
    const bytes = Buffer.from(Array.from({ length: rng.intBetween(0, 300) }, () => rng.intBetween(0, 255)));
    assert.deepEqual(decodeBase64Strict(bytes.toString("base64")), bytes);
  }
});
