// Starts Portkey's open-source gateway (pinned in package.json) for bench/run.sh, bound to
// 127.0.0.1 only: the gateway itself listens on every interface, so listen() is wrapped first.
// Usage: node start.mjs PORT
import net from 'node:net';

const port = Number(process.argv[2] || 8787);
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number') args.splice(1, 0, '127.0.0.1');
  else if (args[0] && typeof args[0] === 'object' && args[0].host === undefined) args[0] = { ...args[0], host: '127.0.0.1' };
  return listen.apply(this, args);
};
process.argv = [process.argv[0], 'start-server.js', `--port=${port}`, '--headless'];
process.env.NODE_ENV = 'production';
console.clear = () => {};
await import('@portkey-ai/gateway/build/start-server.js');
