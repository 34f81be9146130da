// A store restored from a backup must not keep its change log's identity: its peers hold cursors into the
// seq space it had after the backup was taken, and new writes numbered again from the backup's last seq
// would look already seen to them. A fresh identity makes every peer read this store's log from the start.
import { randomInt } from "node:crypto";
import Database from "better-sqlite3";
import { MetaKey } from "./sqlite_schema.ts";

export function renewStoreIdentity(path: string, nowWallMs = Date.now()): void {
  const db = new Database(path, { fileMustExist: true });
  try {
    const set = db.prepare(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    );
    db.transaction(() => {
      set.run(MetaKey.StoreId, randomInt(1, 2 ** 48));
      set.run(MetaKey.CreatedWallMs, nowWallMs);
    })();
  } finally {
    db.close();
  }
}
