// Big-endian byte writer and bounds-checked reader for the store's binary wire format (store_wire.ts).
// Hand-written rather than a general serialiser: the layouts are fixed, values travel as raw bytes (no
// base64, no copy on receipt: they are views into the received frame), and every field is checked as it is
// read, so hostile input fails at the first bad byte instead of after decoding into objects.
import { isUtf8 } from "node:buffer";

/** Malformed input; the reader's callers turn it into a reason to log. */
export class WireFormatError extends Error {
  override name = "WireFormatError";
}

export class ByteWriter {
  private buffer: Buffer;
  private offset = 0;

  /** `capacity`: a good guess of the final size spares regrowing. */
  constructor(capacity = 256) {
    this.buffer = Buffer.allocUnsafe(Math.max(16, capacity));
  }

  u8(value: number): void {
    this.reserve(1);
    this.offset = this.buffer.writeUInt8(value, this.offset);
  }

  u16(value: number): void {
    this.reserve(2);
    this.offset = this.buffer.writeUInt16BE(value, this.offset);
  }

  u32(value: number): void {
    this.reserve(4);
    this.offset = this.buffer.writeUInt32BE(value, this.offset);
  }

  /** A non-negative safe integer (as a float64: exact up to 2^53). */
  uint(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0)
      throw new RangeError(`not a non-negative integer: ${value}`);
    this.reserve(8);
    this.offset = this.buffer.writeDoubleBE(value, this.offset);
  }

  bool(value: boolean): void {
    this.u8(value ? 1 : 0);
  }

  /** UTF-8 text after its byte length in `lengthBytes` (1 or 2) bytes. */
  text(value: string, lengthBytes: 1 | 2): void {
    const bytes = Buffer.byteLength(value, "utf8");
    if (bytes >= 2 ** (8 * lengthBytes)) throw new RangeError(`text of ${bytes} bytes is too long`);
    if (lengthBytes === 1) this.u8(bytes);
    else this.u16(bytes);
    this.reserve(bytes);
    this.offset += this.buffer.write(value, this.offset, "utf8");
  }

  /** Raw bytes after their u32 length. */
  bytes(value: Uint8Array): void {
    this.u32(value.byteLength);
    this.raw(value);
  }

  raw(value: Uint8Array): void {
    this.reserve(value.byteLength);
    this.buffer.set(value, this.offset);
    this.offset += value.byteLength;
  }

  /** What was written, as a view (no copy). */
  finish(): Uint8Array {
    return this.buffer.subarray(0, this.offset);
  }

  private reserve(bytes: number): void {
    if (this.offset + bytes <= this.buffer.byteLength) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.byteLength * 2, this.offset + bytes));
    this.buffer.copy(grown, 0, 0, this.offset);
    this.buffer = grown;
  }
}

export class ByteReader {
  private readonly buffer: Buffer;
  private offset = 0;

  constructor(bytes: Uint8Array) {
    this.buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  u8(): number {
    this.need(1, "u8");
    return this.buffer.readUInt8(this.offset++);
  }

  u16(): number {
    this.need(2, "u16");
    const value = this.buffer.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  u32(): number {
    this.need(4, "u32");
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  /** A non-negative integer at most `max`. */
  uint(what: string, max = Number.MAX_SAFE_INTEGER): number {
    this.need(8, what);
    const value = this.buffer.readDoubleBE(this.offset);
    this.offset += 8;
    if (!Number.isSafeInteger(value) || value < 0 || value > max) {
      throw new WireFormatError(`${what}: ${value} is not an integer in [0, ${max}]`);
    }
    return value;
  }

  bool(what: string): boolean {
    const value = this.u8();
    if (value > 1) throw new WireFormatError(`${what}: ${value} is not a boolean`);
    return value === 1;
  }

  /** UTF-8 text (refused unless well-formed) after its length in `lengthBytes` bytes. */
  text(what: string, lengthBytes: 1 | 2): string {
    const bytes = lengthBytes === 1 ? this.u8() : this.u16();
    this.need(bytes, what);
    const start = this.offset;
    this.offset += bytes;
    if (!isUtf8(this.buffer.subarray(start, this.offset))) throw new WireFormatError(`${what}: not UTF-8`);
    return this.buffer.toString("utf8", start, this.offset);
  }

  /** Bytes after their u32 length, at most `max`: a view into the input, not a copy. */
  bytes(what: string, max: number): Uint8Array {
    const length = this.u32();
    if (length > max) throw new WireFormatError(`${what}: ${length} bytes exceeds ${max}`);
    return this.raw(what, length);
  }

  raw(what: string, length: number): Uint8Array {
    this.need(length, what);
    const start = this.offset;
    this.offset += length;
    const view = this.buffer.subarray(start, this.offset);
    return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  }

  /** A count read ahead of `count` items of at least `itemBytesMin` each: bounded by `max` and by the input. */
  count(what: string, max: number, itemBytesMin: number): number {
    const value = this.u32();
    if (value > max) throw new WireFormatError(`${what}: ${value} exceeds ${max}`);
    if (value * itemBytesMin > this.buffer.byteLength - this.offset) {
      throw new WireFormatError(`${what}: ${value} items cannot fit in what is left`);
    }
    return value;
  }

  /** The input must end here. */
  end(): void {
    const left = this.buffer.byteLength - this.offset;
    if (left !== 0) throw new WireFormatError(`${left} unexpected bytes at the end`);
  }

  private need(bytes: number, what: string): void {
    if (this.offset + bytes > this.buffer.byteLength) throw new WireFormatError(`${what}: truncated`);
  }
}
