// Starts the mock upstream and tollgate for poking at the pages by hand: node dev.mjs
import { startMock, startGateway } from '../e2e/lib/harness.js';
const mock = await startMock();
const gw = await startGateway({ mock });
console.log(JSON.stringify({ base: gw.base, rootKey: gw.rootKey, mock: mock.url }));
const stop = async () => { await gw.cleanup().catch(() => {}); await mock.stop(); process.exit(0); };
process.on('SIGINT', stop); process.on('SIGTERM', stop);
setInterval(() => {}, 1 << 30);
