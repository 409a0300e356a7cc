/**
 * Layout of a network buffer (the payload of a 'buffer' frame). The first byte says what
 * follows:
 * - RECORDS: a MessagePack array of whole records (core/codec.ts): an array 32 header whose
 *   count is filled in when the buffer is closed, then the records as they were emitted, so
 *   the consumer decodes a buffer with one call;
 * - FIRST_FRAGMENT: a 4-byte big-endian total length, then the first bytes of one record too
 *   large for a buffer;
 * - MORE_FRAGMENT: the next bytes of that record;
 * - RECORDS_WITH_TIMESTAMPS: as RECORDS, followed by the records' timestamps; used only when
 *   some record of the buffer has a timestamp, so jobs without event time send exactly what
 *   they did before. The last byte is the width w:
 *   - 16 (VARINT_RUNS) means varint runs: per run of consecutive records with the same
 *     timestamp, its length and the difference of its timestamp from the previous run's
 *     (zigzag), each an unsigned LEB128 varint; then the first run's timestamp (float64), the
 *     number of runs and the bytes of the varints (big-endian uint32 each), then 16. Only
 *     when every timestamp of the buffer is an integer and they span less than 2^31;
 *   - 0 means fixed runs: per run a big-endian uint32 length and a float64 timestamp (NaN:
 *     none), then the number of runs (uint32), then 0;
 *   - 8 means one big-endian float64 per record (NaN: none) before it;
 *   - 1, 2 or 4 means one unsigned big-endian offset of w bytes per record (all ones: none),
 *     then the base (float64) the offsets are added to, then w.
 *   The producer writes the smallest form: varint runs when records come many to a
 *   millisecond (a fast source: about two bytes per run), else the narrow offsets when every
 *   timestamp is an integer and they span less than the width's range, which event times
 *   close together always do: a small record then costs one more byte on the wire, not eight;
 * - FIRST_FRAGMENT_WITH_TIMESTAMP: as FIRST_FRAGMENT with the record's timestamp (float64)
 *   after the length.
 * A record's fragments are consecutive on its channel; the input gate joins them. So no frame
 * is larger than the buffer size, whatever the record size (gRPC refuses frames past
 * `rpc.max-message-size`).
 */
export const BufferHeader = {
  RECORDS: 0,
  FIRST_FRAGMENT: 1,
  MORE_FRAGMENT: 2,
  RECORDS_WITH_TIMESTAMPS: 3,
  FIRST_FRAGMENT_WITH_TIMESTAMP: 4,
} as const;

/** The width byte of the varint runs form of a timestamp block. */
export const VARINT_RUNS = 16;

/** Where the records of a RECORDS buffer start: the header byte and the array 32 header. */
export const RECORDS_START = 6;

/** Bytes per network buffer: Flink's default segment size is 32 KiB too. */
export const TARGET_BUFFER_BYTES = 32 * 1024;

/**
 * A buffer's timestamps as the consumer gets them: records starts[r] up to starts[r + 1]
 * (the last run: to the end) have the timestamp values[r] (NaN: none). Runs, not one number
 * per record, so a task sets a record's timestamp once per run.
 */
export interface TimestampRuns {
  readonly runs: number;
  readonly starts: Uint32Array;
  readonly values: Float64Array;
}
