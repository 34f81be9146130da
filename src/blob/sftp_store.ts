// The `sftp` blob store: a folder on an SSH server (OpenSSH's sftp), logged into with a private key, the
// server's host key pinned in config so that any other server is refused before it sees a byte. A put writes
// ROOT/.tmp/RANDOM.part (fsync'd where the server offers fsync@openssh.com) and renames it onto the key's
// path with posix-rename@openssh.com, which replaces the old object as rename(2) does: readers see the whole
// old object or the whole new one. One connection per store, opened again when a call finds it dropped (a
// restarted server), so the agent never needs a restart for it.

import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { createRequire } from "node:module";
import { posix } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  assertBlobKey,
  assertBlobPrefix,
  BlobKeyError,
  BlobNotFoundError,
  type BlobObject,
  type BlobStore,
  HashingCounter,
  type PutResult,
} from "./blob_store.ts";

export interface SftpBlobStoreOptions {
  /** Its name in tandem.yml (blob.stores.NAME). */
  name: string;
  host: string;
  port: number;
  username: string;
  /** The private key's text (OpenSSH or PEM format, unencrypted), read from its file. */
  privateKey: string;
  /** The server's public host key as `ssh-keyscan` prints it without the host: `ssh-ed25519 AAAA...`. */
  hostKey: string;
  /** The remote folder objects go under (relative: to the login folder); created if missing. */
  root: string;
  /** How long connecting and logging in may take; default 20 s. */
  connectTimeoutMs?: number;
}

// What is used of ssh2-sftp-client (which ships no types) and of ssh2's SFTP session it connects.

/** An SFTP status error (`code` is the protocol's status: 2 no such file, 3 permission denied, 4 failure). */
interface SftpError extends Error {
  code?: number | string;
  level?: string;
}

interface SftpStats {
  mode: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  isFile(): boolean;
  isDirectory(): boolean;
}

type Done<T = void> = (error: SftpError | null | undefined, value: T) => void;

/** ssh2's SFTP session (callback style). */
interface RawSftp {
  open(path: string, flags: "r" | "w", done: Done<Buffer>): void;
  close(handle: Buffer, done: Done): void;
  read(
    handle: Buffer,
    buffer: Buffer,
    offset: number,
    length: number,
    position: number,
    done: Done<number>,
  ): void;
  write(handle: Buffer, buffer: Buffer, offset: number, length: number, position: number, done: Done): void;
  /** Throws at once when the server does not offer fsync@openssh.com. */
  ext_openssh_fsync(handle: Buffer, done: Done): void;
  /** Throws at once when the server does not offer posix-rename@openssh.com. */
  ext_openssh_rename(from: string, to: string, done: Done): void;
  rename(from: string, to: string, done: Done): void;
  stat(path: string, done: Done<SftpStats>): void;
  mkdir(path: string, done: Done): void;
  rmdir(path: string, done: Done): void;
  unlink(path: string, done: Done): void;
  readdir(path: string, done: Done<{ filename: string; attrs: SftpStats }[]>): void;
  on(event: "close" | "end" | "error", listener: () => void): void;
}

interface SftpConnectConfig {
  host: string;
  port: number;
  username: string;
  privateKey: string;
  readyTimeout: number;
  keepaliveInterval: number;
  keepaliveCountMax: number;
  algorithms: { serverHostKey: string[] };
  /** Given the key blob the server presented (no hostHash set); false refuses the server. */
  hostVerifier: (key: Buffer) => boolean;
}

interface SftpClient {
  connect(config: SftpConnectConfig): Promise<RawSftp>;
  end(): Promise<boolean>;
  /** On ssh2's Client (the connection): "close", "end" and "error" when it is gone. */
  on(event: "close" | "end" | "error", listener: () => void): void;
  /** ssh2's Client. */
  readonly client: { destroy(): void; setNoDelay(noDelay: boolean): void };
}

type SftpClientClass = new (
  name: string,
  callbacks: { error: (error: Error) => void; end: () => void; close: () => void },
) => SftpClient;

// CommonJS without types: required, and typed by the interfaces above.
const SftpClientClass = createRequire(import.meta.url)("ssh2-sftp-client") as SftpClientClass;

const TMP_DIR = ".tmp";
const NO_SUCH_FILE = 2;
/** A .tmp file untouched this long is what a crashed put left; younger ones may be another node's upload. */
const TMP_ABANDONED_MS = 60 * 60_000;
/** Uploads keep several write requests in flight (a round trip each otherwise), each at most this big. */
const WRITE_SLICE = 64 * 1024;
const WRITES_IN_FLIGHT = 16;
/** Downloads likewise keep several reads ahead. */
const READ_SIZE = 64 * 1024;
const READS_AHEAD = 16;
/** A dead peer (no TCP reset, e.g. a partition) is noticed after 3 unanswered keepalives. */
const KEEPALIVE_MS = 10_000;
const CLOSE_WAIT_MS = 5_000;

/** An error already worded for the user (names the store): passed on as it is. */
class SftpStoreError extends Error {
  override readonly name = "SftpStoreError";
}

export class SftpBlobStore implements BlobStore {
  readonly kind = "sftp" as const;
  readonly name: string;
  private readonly options: SftpBlobStoreOptions;
  private readonly pinned: PinnedHostKey;
  private readonly root: string;
  private readonly label: string;
  private current: Promise<Session> | null = null;
  private closed = false;
  /** Temporary files a failed put could not remove (its connection had dropped): removed after reconnecting. */
  private readonly orphans = new Set<string>();

  private constructor(options: SftpBlobStoreOptions) {
    this.name = options.name;
    this.options = options;
    this.label = `blob store ${options.name} (sftp ${options.host}:${options.port})`;
    this.pinned = parseHostKey(options.hostKey, this.label);
    const root = posix.normalize(options.root);
    this.root = root.length > 1 && root.endsWith("/") ? root.slice(0, -1) : root;
  }

  /**
   * Connects, creates the root and its .tmp folder, and removes what interrupted puts left there. Fails
   * (naming the store) when the server is unreachable, its host key is not the pinned one or the key login
   * is refused.
   */
  static async open(options: SftpBlobStoreOptions): Promise<SftpBlobStore> {
    const store = new SftpBlobStore(options);
    try {
      await store.run("open", async (session) => {
        await store.ensureDir(session, store.root);
        await store.clearTmp(session);
      });
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  async put(key: string, body: Readable): Promise<PutResult> {
    const path = this.pathOf(key);
    const tmp = posix.join(this.root, TMP_DIR, `${randomBytes(8).toString("hex")}.part`);
    const counter = new HashingCounter();
    let session: Session | null = null;
    try {
      // Retried on a new connection if the old one had dropped: nothing of the body is read yet.
      const opened = await this.run(`put ${key}`, async (s) => ({ s, handle: await this.openTmp(s, tmp) }));
      session = opened.s;
      let handle: Buffer | null = opened.handle;
      try {
        await pipeline(body, counter, new RemoteFileWriter(session, handle));
        await session.fsync(handle);
        const written = handle;
        handle = null;
        // Its error counts: the server may report a failed write only here.
        await session.close(written);
      } finally {
        if (handle !== null) await session.close(handle).catch(() => {});
      }
      await this.renameOnto(session, tmp, path);
    } catch (error) {
      body.destroy();
      if (session !== null) await this.discard(session, tmp);
      throw this.failure(`put ${key}`, error);
    }
    return counter.result();
  }

  async get(key: string): Promise<Readable> {
    const path = this.pathOf(key);
    return this.run(`get ${key}`, async (session) => {
      // Opened first, so a missing object is an error here and not on the stream's first read.
      const handle = await session.open(path, "r").catch((error: SftpError) => {
        throw error.code === NO_SUCH_FILE ? new BlobNotFoundError(this.name, key) : error;
      });
      return new RemoteFileReader(session, handle, (error) => this.failure(`get ${key}`, error));
    });
  }

  async stat(key: string): Promise<BlobObject | null> {
    const path = this.pathOf(key);
    const info = await this.run(`stat ${key}`, (session) => session.stat(path));
    return info?.isFile() ? { key, size: info.size, modifiedMs: info.mtime * 1000 } : null;
  }

  async *list(prefix: string): AsyncIterable<BlobObject> {
    assertBlobPrefix(prefix);
    // Walk only the folder the prefix's complete segments name.
    yield* this.walk(prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "", prefix);
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    await this.run(`delete ${key}`, (session) => session.unlink(path));
  }

  async close(): Promise<void> {
    this.closed = true;
    const current = this.current;
    this.current = null;
    const session = await current?.catch(() => null);
    await session?.end();
  }

  private async *walk(folder: string, prefix: string): AsyncIterable<BlobObject> {
    const dir = folder === "" ? this.root : posix.join(this.root, folder);
    const entries = await this.run(`list ${prefix}`, (session) => session.readdir(dir));
    for (const { filename, attrs } of entries ?? []) {
      const key = folder === "" ? filename : `${folder}/${filename}`;
      if (key === TMP_DIR) continue;
      if (attrs.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) yield* this.walk(key, prefix);
      } else if (attrs.isFile() && key.startsWith(prefix)) {
        yield { key, size: attrs.size, modifiedMs: attrs.mtime * 1000 };
      }
    }
  }

  /** The connection, opened (again) when there is none or it has dropped; a failed one is not kept. */
  private async session(): Promise<Session> {
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new SftpStoreError(`${this.label}: the store is closed`);
      this.current ??= this.connect();
      const current = this.current;
      const session = await current.catch((error: unknown) => {
        if (this.current === current) this.current = null;
        throw error;
      });
      if (!session.closed || attempt > 0) return session;
      if (this.current === current) this.current = null;
    }
  }

  /** `op` on the connection; when that connection dropped under it, once more on a new one. */
  private async run<T>(what: string, op: (session: Session) => Promise<T>): Promise<T> {
    const session = await this.session();
    try {
      return await op(session);
    } catch (error) {
      if (!session.closed) throw this.failure(what, error);
    }
    try {
      return await op(await this.session());
    } catch (error) {
      throw this.failure(what, error);
    }
  }

  private async connect(): Promise<Session> {
    const client = new SftpClientClass(`tandem-blob-${this.name}`, {
      // The connection's own events are watched by the Session; the library would log these to the console.
      error: () => {},
      end: () => {},
      close: () => {},
    });
    const presented: { key: Buffer | null } = { key: null };
    const { host, port, username, privateKey } = this.options;
    let session: Session;
    try {
      session = await Session.connect(client, {
        host,
        port,
        username,
        privateKey,
        readyTimeout: this.options.connectTimeoutMs ?? 20_000,
        keepaliveInterval: KEEPALIVE_MS,
        keepaliveCountMax: 3,
        // Ask for the pinned key's type, so a server with several host keys shows that one.
        algorithms: { serverHostKey: this.pinned.algorithms },
        hostVerifier: (key: Buffer) => {
          presented.key = Buffer.from(key);
          return key.length === this.pinned.blob.length && timingSafeEqual(key, this.pinned.blob);
        },
      });
    } catch (error) {
      throw this.connectFailure(error, presented.key);
    }
    if (this.orphans.size > 0) void this.removeOrphans(session);
    return session;
  }

  private connectFailure(error: unknown, presented: Buffer | null): Error {
    if (presented !== null && !presented.equals(this.pinned.blob)) {
      return new SftpStoreError(
        `${this.label}: the server's host key did not match the pinned one: it presented ` +
          `${keyType(presented) ?? "a key"} ${fingerprint(presented)}, host_key pins ` +
          `${this.pinned.type} ${fingerprint(this.pinned.blob)} (if the server's key was changed on purpose, ` +
          `put its new one in blob.stores.${this.name}.host_key)`,
      );
    }
    const { level, message } = error as SftpError;
    // ssh2-sftp-client re-throws ssh2's error without its level: its message tells.
    if (level === "client-authentication" || /authentication methods failed/.test(message)) {
      return new SftpStoreError(
        `${this.label}: authentication as ${this.options.username} failed: the server refused the private ` +
          "key (is its public key in that user's authorized_keys?)",
      );
    }
    return new SftpStoreError(`${this.label}: cannot connect: ${message}`, { cause: error });
  }

  /** Errors name the store and what was being done; a missing object and a bad key keep their types. */
  private failure(what: string, error: unknown): Error {
    if (
      error instanceof SftpStoreError ||
      error instanceof BlobNotFoundError ||
      error instanceof BlobKeyError
    ) {
      return error;
    }
    return new SftpStoreError(`${this.label}: ${what}: ${(error as Error).message}`, { cause: error });
  }

  /** The .tmp folder is made again if someone removed it. */
  private async openTmp(session: Session, tmp: string): Promise<Buffer> {
    try {
      return await session.open(tmp, "w");
    } catch (error) {
      if ((error as SftpError).code !== NO_SUCH_FILE) throw error;
      await this.ensureDir(session, posix.dirname(tmp));
      return session.open(tmp, "w");
    }
  }

  /** Folders are made only when the rename finds one missing: an existing key costs no extra round trip. */
  private async renameOnto(session: Session, tmp: string, path: string): Promise<void> {
    try {
      await session.rename(tmp, path);
    } catch (error) {
      if ((error as SftpError).code !== NO_SUCH_FILE) throw error;
      await this.ensureDir(session, posix.dirname(path));
      await session.rename(tmp, path);
    }
  }

  private async ensureDir(session: Session, dir: string): Promise<void> {
    const info = await session.stat(dir);
    if (info?.isDirectory()) return;
    if (info !== null) throw new Error(`${dir} exists and is not a folder`);
    const parent = posix.dirname(dir);
    if (parent !== dir) await this.ensureDir(session, parent);
    await session.mkdir(dir).catch(async (error: unknown) => {
      // Made meanwhile by a concurrent put: fine.
      if (!(await session.stat(dir))?.isDirectory()) throw error;
    });
  }

  /** Removes abandoned temporary files; a store's root may be shared by several nodes uploading at once. */
  private async clearTmp(session: Session): Promise<void> {
    const tmp = posix.join(this.root, TMP_DIR);
    await this.ensureDir(session, tmp);
    const before = Date.now() - TMP_ABANDONED_MS;
    for (const { filename, attrs } of (await session.readdir(tmp)) ?? []) {
      if (attrs.mtime * 1000 < before) await session.removeTree(posix.join(tmp, filename), attrs);
    }
  }

  private async discard(session: Session, tmp: string): Promise<void> {
    try {
      await session.unlink(tmp);
    } catch {
      this.orphans.add(tmp);
    }
  }

  private async removeOrphans(session: Session): Promise<void> {
    for (const tmp of [...this.orphans]) {
      this.orphans.delete(tmp);
      await this.discard(session, tmp);
      if (session.closed) return;
    }
  }

  private pathOf(key: string): string {
    assertBlobKey(key);
    return posix.join(this.root, key);
  }
}

/** One SSH connection and its SFTP session, as promises. */
class Session {
  private readonly client: SftpClient;
  private readonly sftp: RawSftp;
  private readonly state: { closed: boolean };

  private constructor(client: SftpClient, sftp: RawSftp, state: { closed: boolean }) {
    this.client = client;
    this.sftp = sftp;
    this.state = state;
  }

  static async connect(client: SftpClient, config: SftpConnectConfig): Promise<Session> {
    const state = { closed: false };
    const lost = () => {
      state.closed = true;
    };
    client.on("close", lost);
    client.on("end", lost);
    client.on("error", lost);
    const sftp = await client.connect(config);
    // Requests are small and answered one by one: Nagle's delay would hold them (several times slower).
    client.client.setNoDelay(true);
    sftp.on("close", lost);
    sftp.on("end", lost);
    // A protocol error ends the session; unheard, it would be thrown and end the process.
    sftp.on("error", lost);
    return new Session(client, sftp, state);
  }

  /** The connection (or its SFTP channel) is gone: every call on it fails, at once. */
  get closed(): boolean {
    return this.state.closed;
  }

  open(path: string, flags: "r" | "w"): Promise<Buffer> {
    return this.request(`open ${path}`, (sftp, done: Done<Buffer>) => sftp.open(path, flags, done));
  }

  close(handle: Buffer): Promise<void> {
    return this.request("close", (sftp, done: Done) => sftp.close(handle, done));
  }

  /** Bytes read into `buffer` from `position`; 0 at the end of the file. */
  read(handle: Buffer, buffer: Buffer, position: number): Promise<number> {
    return this.request("read", (sftp, done: Done<number>) =>
      sftp.read(handle, buffer, 0, buffer.length, position, done),
    );
  }

  write(handle: Buffer, data: Buffer, position: number): Promise<void> {
    return this.request("write", (sftp, done: Done) =>
      sftp.write(handle, data, 0, data.length, position, done),
    );
  }

  /** Flushes the file to the server's disk, where the server offers fsync@openssh.com. */
  async fsync(handle: Buffer): Promise<void> {
    await this.request("fsync", (sftp, done: Done) => {
      try {
        sftp.ext_openssh_fsync(handle, done);
      } catch {
        done(null, undefined);
      }
    });
  }

  /**
   * Renames, replacing what `to` held: posix-rename@openssh.com where offered (plain SFTP rename fails on an
   * existing target), else removing the target first (a reader may then briefly find no object).
   */
  rename(from: string, to: string): Promise<void> {
    return this.request(`rename ${from} to ${to}`, (sftp, done: Done) => {
      try {
        sftp.ext_openssh_rename(from, to, done);
      } catch {
        sftp.unlink(to, (error) => {
          if (error && error.code !== NO_SUCH_FILE) done(error, undefined);
          else sftp.rename(from, to, done);
        });
      }
    });
  }

  /** Null when there is nothing at `path`. */
  async stat(path: string): Promise<SftpStats | null> {
    return this.request(`stat ${path}`, (sftp, done: Done<SftpStats>) => sftp.stat(path, done)).catch(
      (error: SftpError) => {
        if (error.code === NO_SUCH_FILE) return null;
        throw error;
      },
    );
  }

  mkdir(path: string): Promise<void> {
    return this.request(`mkdir ${path}`, (sftp, done: Done) => sftp.mkdir(path, done));
  }

  /** Removing what is not there is no error. */
  async unlink(path: string): Promise<void> {
    await this.request(`remove ${path}`, (sftp, done: Done) => sftp.unlink(path, done)).catch(
      (error: SftpError) => {
        if (error.code !== NO_SUCH_FILE) throw error;
      },
    );
  }

  /** The folder's entries, or null when there is no such folder. */
  async readdir(path: string): Promise<{ filename: string; attrs: SftpStats }[] | null> {
    return this.request(`list ${path}`, (sftp, done: Done<{ filename: string; attrs: SftpStats }[]>) =>
      sftp.readdir(path, done),
    ).catch((error: SftpError) => {
      if (error.code === NO_SUCH_FILE) return null;
      throw error;
    });
  }

  async removeTree(path: string, attrs: SftpStats): Promise<void> {
    if (!attrs.isDirectory()) return this.unlink(path);
    for (const entry of (await this.readdir(path)) ?? []) {
      await this.removeTree(posix.join(path, entry.filename), entry.attrs);
    }
    await this.request(`rmdir ${path}`, (sftp, done: Done) => sftp.rmdir(path, done));
  }

  /** Ends the connection, not waiting more than a few seconds for a server that does not answer. */
  async end(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.client.client.destroy();
        resolve();
      }, CLOSE_WAIT_MS);
    });
    await Promise.race([this.client.end().catch(() => {}), timeout]);
    clearTimeout(timer);
  }

  /**
   * One request. On a closed connection it fails at once: ssh2 would drop it unsent and never answer. The
   * error says what was asked, and keeps the server's status code.
   */
  private request<T>(what: string, send: (sftp: RawSftp, done: Done<T>) => void): Promise<T> {
    if (this.state.closed) return Promise.reject(new Error(`${what}: the connection was closed`));
    return new Promise<T>((resolve, reject) => {
      send(this.sftp, (error, value) => {
        if (!error) {
          resolve(value);
          return;
        }
        const wrapped: SftpError = new Error(`${what}: ${error.message}`, { cause: error });
        wrapped.code = error.code;
        reject(wrapped);
      });
    });
  }
}

/** Writes what flows in to an open remote file, several write requests in flight. */
class RemoteFileWriter extends Writable {
  private readonly session: Session;
  private readonly handle: Buffer;
  private position = 0;
  private inFlight = 0;
  private failed: Error | null = null;
  /** A write's (or the final) callback held until at most `limit` requests are in flight. */
  private waiting: { limit: number; done: (error?: Error | null) => void } | null = null;

  constructor(session: Session, handle: Buffer) {
    super({ highWaterMark: 1 << 20 });
    this.session = session;
    this.handle = handle;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    for (let at = 0; at < chunk.length && this.failed === null; at += WRITE_SLICE) {
      const slice = chunk.subarray(at, at + WRITE_SLICE);
      const position = this.position;
      this.position += slice.length;
      this.inFlight++;
      this.session.write(this.handle, slice, position).then(
        () => this.replied(null),
        (error: Error) => this.replied(error),
      );
    }
    this.waitUntil(WRITES_IN_FLIGHT - 1, done);
  }

  override _final(done: (error?: Error | null) => void): void {
    this.waitUntil(0, done);
  }

  private waitUntil(limit: number, done: (error?: Error | null) => void): void {
    if (this.failed !== null) done(this.failed);
    else if (this.inFlight <= limit) done();
    else this.waiting = { limit, done };
  }

  private replied(error: Error | null): void {
    this.inFlight--;
    this.failed ??= error;
    const waiting = this.waiting;
    if (waiting !== null && (this.failed !== null || this.inFlight <= waiting.limit)) {
      this.waiting = null;
      waiting.done(this.failed);
    }
  }
}

/**
 * Reads an open remote file from its start, several read requests ahead (a round trip each otherwise);
 * closes the handle when done, read through or not.
 */
class RemoteFileReader extends Readable {
  private readonly session: Session;
  private readonly handle: Buffer;
  /** Words a failed read (naming the store): the stream's consumer has no other context. */
  private readonly failure: (error: unknown) => Error;
  /** Where the next request reads from. */
  private next = 0;
  private readonly ahead: { position: number; buffer: Buffer; reply: Promise<number> }[] = [];
  private waiting = false;

  constructor(session: Session, handle: Buffer, failure: (error: unknown) => Error) {
    super({ highWaterMark: 1 << 20 });
    this.session = session;
    this.handle = handle;
    this.failure = failure;
  }

  override _read(): void {
    if (this.waiting) return;
    this.waiting = true;
    while (this.ahead.length < READS_AHEAD) this.request();
    const head = this.ahead.shift()!;
    head.reply.then(
      (bytes) => {
        this.waiting = false;
        if (bytes === 0) {
          this.push(null);
          return;
        }
        if (bytes < head.buffer.length) {
          // A short read (a server with a smaller limit): the requests after it read from the wrong place.
          this.ahead.length = 0;
          this.next = head.position + bytes;
        }
        this.push(head.buffer.subarray(0, bytes));
      },
      (error: unknown) => this.destroy(this.failure(error)),
    );
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    // A failed close after the data was read changes nothing for the reader.
    this.session.close(this.handle).then(
      () => done(error),
      () => done(error),
    );
  }

  private request(): void {
    const position = this.next;
    const buffer = Buffer.allocUnsafe(READ_SIZE);
    this.next += READ_SIZE;
    const reply = this.session.read(this.handle, buffer, position);
    // A request dropped after a short read or the end may still fail: nobody waits for it.
    reply.catch(() => {});
    this.ahead.push({ position, buffer, reply });
  }
}

interface PinnedHostKey {
  type: string;
  blob: Buffer;
  /** What to ask the server for (an RSA key signs with any of these). */
  algorithms: string[];
}

/** `TYPE BASE64 [comment]`, the key blob's own type agreeing with TYPE. */
function parseHostKey(line: string, label: string): PinnedHostKey {
  const [type = "", base64 = ""] = line.trim().split(/\s+/);
  const blob = Buffer.from(base64, "base64");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || keyType(blob) !== type) {
    throw new SftpStoreError(
      `${label}: host_key is not a public key line like \`ssh-ed25519 AAAA...\` (ssh-keyscan's, without the host)`,
    );
  }
  const algorithms = type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [type];
  return { type, blob, algorithms };
}

/** The type a key blob names in its first field (an SSH string). */
function keyType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  return length > 0 && length <= 64 && 4 + length <= blob.length
    ? blob.subarray(4, 4 + length).toString("latin1")
    : undefined;
}

/** As OpenSSH shows it: SHA256: and the unpadded base64 of the blob's SHA-256. */
function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}
