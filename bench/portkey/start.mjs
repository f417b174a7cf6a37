// Starts Portkey's open-source gateway (pinned in package.json + package-lock.json) for
// bench/run.sh.  Usage: node start.mjs PORT
//
// Two adaptations, neither touching the request path of non-streaming calls:
//  * the gateway listens on every interface; listen() is wrapped so it binds 127.0.0.1 only;
//  * on Node 20 its streaming path appends headers to the upstream fetch() Response, whose
//    headers are immutable, and fails every stream with "TypeError: immutable" (Portkey-AI/gateway
//    issues 1389 and 1550). fetch() is wrapped to copy an event-stream response's headers into a
//    mutable Headers object; other responses are returned untouched.
import net from 'node:net';

const port = Number(process.argv[2] || 8787);

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number') args.splice(1, 0, '127.0.0.1');
  else if (args[0] && typeof args[0] === 'object' && args[0].host === undefined) args[0] = { ...args[0], host: '127.0.0.1' };
  return listen.apply(this, args);
};

const upstreamFetch = globalThis.fetch;
const NativeResponse = globalThis.Response; // before @hono/node-server replaces it
globalThis.fetch = async (...args) => {
  const res = await upstreamFetch(...args);
  if (!(res.headers.get('content-type') || '').startsWith('text/event-stream')) return res;
  return new NativeResponse(res.body, { status: res.status, statusText: res.statusText, headers: new Headers(res.headers) });
};

process.argv = [process.argv[0], 'start-server.js', `--port=${port}`, '--headless'];
process.env.NODE_ENV = 'production';
console.clear = () => {};
await import('@portkey-ai/gateway/build/start-server.js');
