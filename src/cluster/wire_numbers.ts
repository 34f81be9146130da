// Numbers in the cluster's binary messages (wire.ts, health_wire.ts): big-endian float64, which holds every
// safe integer exactly. Readers return -1 for anything but the values the field allows, so a decoder refuses
// NaN, infinities, fractions where integers belong, negatives and -0 (which would not re-encode the same).

/** ws hands frames out as Buffers; a plain Uint8Array (tests) gets a Buffer view over the same bytes. */
function asBuffer(bytes: Uint8Array): Buffer {
  return bytes instanceof Buffer ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function writeUint(bytes: Buffer, offset: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`not a non-negative integer: ${value}`);
  // -0 is written as 0: readers refuse -0.
  bytes.writeDoubleBE(value === 0 ? 0 : value, offset);
}

/** A non-negative safe integer, or -1. The caller checked that 8 bytes are there. */
export function readUint(bytes: Uint8Array, offset: number): number {
  const value = asBuffer(bytes).readDoubleBE(offset);
  return Number.isSafeInteger(value) && value >= 0 && !Object.is(value, -0) ? value : -1;
}

export function writeNonNegative(bytes: Buffer, offset: number, value: number): void {
  if (!(value >= 0 && value <= Number.MAX_SAFE_INTEGER))
    throw new RangeError(`not a number in [0, 2^53): ${value}`);
  bytes.writeDoubleBE(value === 0 ? 0 : value, offset);
}

/** A number in [0, MAX_SAFE_INTEGER] (fractions allowed), or -1. */
export function readNonNegative(bytes: Uint8Array, offset: number): number {
  const value = asBuffer(bytes).readDoubleBE(offset);
  return value >= 0 && value <= Number.MAX_SAFE_INTEGER && !Object.is(value, -0) ? value : -1;
}
