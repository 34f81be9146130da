// Fuzz-style: hostile paths and bodies, fixed and seeded-random, must each get a typed 4xx error and
// leave the store untouched.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Prng } from "../../../src/core/prng.ts";
import { validateStorePath } from "../../../src/core/store_path.ts";
import { MemoryStoreService } from "../../support/memory_store_service.ts";
import { type RawResponse, rawRequest, startStoreServer } from "./store_http.ts";

const json = { "content-type": "application/json" };

const hostilePaths = [
  "/api/v1/store/..",
  "/api/v1/store/../etc/passwd",
  "/api/v1/store/a/../../b",
  "/api/v1/store/a/./b",
  "/api/v1/store/%2e%2e/x",
  "/api/v1/store/%2E%2E%2Fetc",
  "/api/v1/store/a%2F..%2Fb",
  "/api/v1/store//etc/passwd",
  "/api/v1/store/%2Fetc%2Fpasswd",
  "/api/v1/store/a%00b",
  "/api/v1/store/a%0Ab",
  "/api/v1/store/a%1Bb",
  "/api/v1/store/a%7Fb",
  "/api/v1/store/next%C2%85line",
  "/api/v1/store/csi%C2%9B31m",
  "/api/v1/store/invoice%E2%80%AEfdp.exe",
  "/api/v1/store/a%5Cb",
  "/api/v1/store/a/",
  "/api/v1/store/a//b",
  "/api/v1/store/%",
  "/api/v1/store/%zz",
  "/api/v1/store/%ED%A0%80",
  `/api/v1/store/${"a".repeat(256)}`,
  `/api/v1/store/${"a/".repeat(40)}a`,
  `/api/v1/store/${"abcdefgh/".repeat(120)}x`,
];

function assertTypedClientError(response: RawResponse, what: string): void {
  assert.ok(response.status >= 400 && response.status < 500, `${what}: status ${response.status}`);
  const body = response.json();
  assert.deepEqual(Object.keys(body), ["error"], what);
  assert.equal(typeof body.error?.code, "string", what);
  assert.equal(typeof body.error?.message, "string", what);
}

test("store api: hostile paths in the URL are typed 4xx errors for every method", async (t) => {
  const service = new MemoryStoreService();
  const api = await startStoreServer(service);
  t.after(() => api.close());
  for (const path of hostilePaths) {
    for (const method of ["GET", "PUT", "DELETE"]) {
      const response = await rawRequest(api.base, method, path, method === "PUT" ? { body: "x" } : {});
      assertTypedClientError(response, `${method} ${path.slice(0, 60)}`);
    }
  }
  assert.equal(service.writeCalls.length, 0);
  assert.equal(service.lastSeq(), 0);
});

const hostileBodies: Array<[string, string]> = [
  ["not JSON", "{writes:"],
  ["JSON null", "null"],
  ["an array", "[]"],
  ["a string", '"writes"'],
  ["writes missing", "{}"],
  ["writes not an array", '{"writes":{"path":"a"}}'],
  ["empty writes", '{"writes":[]}'],
  ["unknown top field", '{"writes":[{"path":"a","value":null}],"admin":true}'],
  ["write not an object", '{"writes":["a"]}'],
  ["path a number", '{"writes":[{"path":7,"value":null}]}'],
  ["path missing", '{"writes":[{"value":null}]}'],
  ["path traversal", '{"writes":[{"path":"../x","value":null}]}'],
  ["absolute path", '{"writes":[{"path":"/etc/x","value":null}]}'],
  ["NUL in path", '{"writes":[{"path":"a\\u0000b","value":null}]}'],
  ["control char", '{"writes":[{"path":"a\\u0007b","value":null}]}'],
  ["C1 control char", '{"writes":[{"path":"a\\u0085b","value":null}]}'],
  ["C1 CSI", '{"writes":[{"path":"a\u009b31mb","value":null}]}'],
  ["bidi override", '{"writes":[{"path":"a\\u202eb","value":null}]}'],
  ["value a number", '{"writes":[{"path":"a","value":5}]}'],
  ["value an object", '{"writes":[{"path":"a","value":{"b":1}}]}'],
  ["value missing", '{"writes":[{"path":"a"}]}'],
  ["invalid base64", '{"writes":[{"path":"a","value":"@@@@"}]}'],
  ["unpadded base64", '{"writes":[{"path":"a","value":"QUJ"}]}'],
  ["base64 with space", '{"writes":[{"path":"a","value":"QU Jk"}]}'],
  ["unknown write field", '{"writes":[{"path":"a","value":null,"mode":"0777"}]}'],
  ["repeated path", '{"writes":[{"path":"a","value":null},{"path":"a","value":"QQ=="}]}'],
  ["min_acks negative", '{"writes":[{"path":"a","value":null}],"minAcks":-1}'],
  ["min_acks fractional", '{"writes":[{"path":"a","value":null}],"minAcks":1.5}'],
  ["min_acks word", '{"writes":[{"path":"a","value":null}],"minAcks":"most"}'],
  ["a good write then a bad one", '{"writes":[{"path":"ok","value":null},{"path":"..","value":null}]}'],
];

test("store api: hostile batch bodies are typed 4xx errors and nothing is written", async (t) => {
  const service = new MemoryStoreService();
  const api = await startStoreServer(service);
  t.after(() => api.close());
  for (const [what, body] of hostileBodies) {
    assertTypedClientError(
      await rawRequest(api.base, "POST", "/api/v1/store", { headers: json, body }),
      what,
    );
  }
  const wrongType = await rawRequest(api.base, "POST", "/api/v1/store", { body: '{"writes":[]}' });
  assert.equal(wrongType.status, 415);
  for (const body of ["", "{", '{"value":7}', '{"value":"*"}', '{"value":"QQ==","x":1}']) {
    assertTypedClientError(
      await rawRequest(api.base, "PUT", "/api/v1/store/a", { headers: json, body }),
      `single JSON PUT ${body}`,
    );
  }
  assert.equal(service.writeCalls.length, 0);
  assert.equal(service.lastSeq(), 0);
});

/** The oracle: what the URL tail names once percent-decoded, if the path rules accept it. */
function validTail(tail: string): string | null {
  try {
    const checked = validateStorePath(decodeURIComponent(tail));
    return checked.ok ? checked.path : null;
  } catch {
    return null;
  }
}

test("store api: seeded random paths: written iff the path rules accept them, else typed 4xx", async (t) => {
  const service = new MemoryStoreService();
  const api = await startStoreServer(service);
  t.after(() => api.close());
  const rng = new Prng("store-api-hostile");
  const alphabet = [
    "a",
    "/",
    ".",
    "..",
    "%00",
    "%2F",
    "%2e",
    "%",
    "%C0%AF",
    "\\",
    "%5C",
    "%0D%0A",
    "~",
    "%FF",
    "%E2%82%AC",
    "%C2%85",
    "%E2%80%AE",
  ];
  let written = 0;
  for (let i = 0; i < 400; i++) {
    let tail = "";
    const parts = rng.intBetween(1, 8);
    for (let p = 0; p < parts; p++) tail += rng.pick(alphabet);
    const response = await rawRequest(api.base, "PUT", `/api/v1/store/${tail}?min_acks=0`, { body: "x" });
    const path = validTail(tail);
    if (path === null) {
      assertTypedClientError(response, tail);
    } else {
      assert.equal(response.status, 200, tail);
      assert.equal(service.get(path)?.path, path, tail);
      written++;
    }
    assert.equal(service.writeCalls.length, written, tail);
  }
  assert.ok(written > 0 && written < 400, `both outcomes exercised (${written} written)`);
});

test("store api: seeded random bytes as a batch body are typed 4xx and never write", async (t) => {
  const service = new MemoryStoreService();
  const api = await startStoreServer(service);
  t.after(() => api.close());
  const rng = new Prng("store-api-garbage-body");
  for (let i = 0; i < 200; i++) {
    const bytes = Buffer.alloc(rng.intBetween(0, 64));
    for (let b = 0; b < bytes.length; b++) bytes[b] = rng.intBetween(0, 255);
    const garbage = await rawRequest(api.base, "POST", "/api/v1/store", { headers: json, body: bytes });
    assertTypedClientError(garbage, `body ${bytes.toString("hex")}`);
  }
  assert.equal(service.writeCalls.length, 0);
});
