// A real S3-compatible server (s3rver) in its own process, over HTTP; args: <dir> [address] [port]
// (default 127.0.0.1 and any free port). Accepts the credentials S3RVER / S3RVER. Plain
// JavaScript, so the process starts without loading tsx.
import S3rver from 's3rver';

// the same dir and port bring a stopped server back with its objects
const [dir, address, port] = process.argv.slice(2);
const server = new S3rver({
  address: address ?? '127.0.0.1',
  port: Number(port ?? 0),
  directory: dir,
  silent: true,
  configureBuckets: [{ name: 'weir' }],
});
const { port: bound } = await server.run();
process.send?.({ port: bound });
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
