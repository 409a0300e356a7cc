/** Numbers at every MessagePack integer width boundary, fractions, and strings of every header size. */
export const KEYS_OF_EVERY_FORMAT: Array<string | number> = [
  ...[0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53],
  ...[-1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31)],
  ...[1.5, -2.25],
  ...[
    '',
    'k',
    'x'.repeat(31),
    'x'.repeat(32),
    'y'.repeat(255),
    'z'.repeat(256),
    'ünïcødé',
    'é'.repeat(11),
    '😀'.repeat(40),
  ],
];
