// The configured blob stores by name, each opened on first use and kept: a store that cannot be reached
// (an SFTP server down, a bucket's endpoint unreachable) fails the calls that need it, which retry later,
// and never keeps the agent from starting. The S3 and SFTP clients are loaded only by a node that uses them.

import { readFile } from "node:fs/promises";
import type { BlobStoreConfig, SecretSource } from "../config/index.ts";
import { readSecretFrom } from "../shell/index.ts";
import type { BlobStore } from "./blob_store.ts";
import { LocalBlobStore } from "./local_store.ts";

export class BlobStores {
  private readonly configs: Map<string, BlobStoreConfig>;
  private readonly opened = new Map<string, Promise<BlobStore>>();
  /** Who writes through these stores (this node's id): its name marks its temporary files. */
  private readonly writer: string;

  constructor(configs: readonly BlobStoreConfig[], writer = "local") {
    this.configs = new Map(configs.map((config) => [config.name, config]));
    this.writer = writer;
  }

  names(): string[] {
    return [...this.configs.keys()];
  }

  /** The recipients objects in `name` are encrypted to beyond the cluster's: the store's own. */
  recipientsFor(name: string): readonly string[] {
    return this.configs.get(name)?.recipients ?? [];
  }

  kindOf(name: string): BlobStoreConfig["type"] | undefined {
    return this.configs.get(name)?.type;
  }

  /** The store named `name`, opened; a failed open is forgotten, so the next call tries again. */
  get(name: string): Promise<BlobStore> {
    const config = this.configs.get(name);
    if (config === undefined) return Promise.reject(new Error(`no blob store named ${name}`));
    let store = this.opened.get(name);
    if (store === undefined) {
      store = openStore(config, this.writer);
      this.opened.set(name, store);
      store.catch(() => this.opened.delete(name));
    }
    return store;
  }

  async close(): Promise<void> {
    const opened = [...this.opened.values()];
    this.opened.clear();
    await Promise.allSettled(opened.map(async (store) => (await store).close()));
  }
}

async function openStore(config: BlobStoreConfig, writer: string): Promise<BlobStore> {
  if (config.type === "local") return LocalBlobStore.open(config.name, config.path, writer);
  if (config.type === "s3") {
    const secret = (source: SecretSource, field: string) =>
      readSecretFrom(source, `blob.stores.${config.name}.${field}`);
    const { S3BlobStore } = await import("./s3_store.ts");
    return new S3BlobStore({
      name: config.name,
      bucket: config.bucket,
      region: config.region,
      ...(config.endpoint === null ? {} : { endpoint: config.endpoint }),
      forcePathStyle: config.pathStyle,
      prefix: config.prefix,
      accessKeyId: await secret(config.accessKeyId, "access_key_id"),
      secretAccessKey: await secret(config.secretAccessKey, "secret_access_key"),
    });
  }
  const privateKey = await readFile(config.privateKeyFile, "utf8").catch((error: NodeJS.ErrnoException) => {
    throw new Error(
      `blob.stores.${config.name}.private_key_file: cannot read ${config.privateKeyFile}: ${error.code}`,
    );
  });
  const { SftpBlobStore } = await import("./sftp_store.ts");
  return SftpBlobStore.open({
    name: config.name,
    host: config.host,
    port: config.port,
    username: config.username,
    privateKey,
    hostKey: config.hostKey,
    root: config.path,
  });
}
