// The fault proxy as a process (for a network namespace): args <listen host> <listen port>
// <target host> <target port>. It sends { port } once listening and takes FaultMode messages
// over IPC, answering each with { counts }.
import { FaultProxy, type FaultMode } from './fault-proxy.js';

const [host, port, targetHost, targetPort] = process.argv.slice(2);
const proxy = new FaultProxy(targetHost!, Number(targetPort));
const bound = await proxy.listen(host!, Number(port ?? 0));
process.send?.({ port: bound });
process.on('message', (m: FaultMode) => {
  proxy.mode = m;
  process.send?.({ counts: proxy.counts });
});
process.on('disconnect', () => void proxy.close().then(() => process.exit(0)));
