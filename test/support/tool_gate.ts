// Tests that need a tool from Debian (a server, a CLI): found where Debian puts it, and skipped without it
// (saying what is missing and how to install it), except under CI=true, where a missing tool is a broken
// environment: then `unsupported` is set and the test fails with it (`if (unsupported) assert.fail(...)`).
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** An executable in PATH or in the sbin folders (where Debian puts knotd and named). */
export function findBinary(binary: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/sbin", "/usr/local/sbin"];
  for (const dir of dirs.filter(Boolean)) {
    try {
      accessSync(join(dir, binary), constants.X_OK);
      return join(dir, binary);
    } catch {}
  }
  return undefined;
}

/** For describe()/test(): `unsupported` (what is missing, or undefined) as a skip, or, on CI, a failure. */
export function testGate(unsupported: string | undefined): {
  unsupported: string | undefined;
  skip: string | false;
} {
  return { unsupported, skip: unsupported !== undefined && process.env.CI !== "true" ? unsupported : false };
}
