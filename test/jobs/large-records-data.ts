// Record sizes of large-records.ts (247 MB in all), shared with its test.
export const SIZES_MB = [2, 40, 10, 40, 5, 40, 3, 20, 40, 7];
