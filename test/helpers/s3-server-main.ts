// A real S3-compatible server (s3rver) in its own process, over HTTP on a loopback port.
import S3rver from 's3rver';

// args: <data dir> [port]; the same dir and port bring a stopped server back with its objects
const dir = process.argv[2]!;
const server = new S3rver({ address: '127.0.0.1', port: Number(process.argv[3] ?? 0), directory: dir, silent: true, configureBuckets: [{ name: 'weir' }] });
const { port } = await server.run();
process.send?.({ port });
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
