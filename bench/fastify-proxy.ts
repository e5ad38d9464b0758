// The best-known Node proxy, as a peer: fastify 5 + @fastify/http-proxy (undici underneath),
// no authentication, logging off, the same keep-alive settings as the bare proxy and keygate.
import proxy from '@fastify/http-proxy';
import Fastify from 'fastify';

const upstream = process.env.UPSTREAM ?? 'http://127.0.0.1:9000';
const app = Fastify({ logger: false, keepAliveTimeout: 65_000 });
await app.register(proxy, {
  upstream,
  http2: false,
  undici: { connections: 128, pipelining: 1, keepAliveTimeout: 30_000 },
});
process.on('SIGINT', () => process.exit(0));
await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });
const addr = app.server.address();
process.stdout.write(`${JSON.stringify({ listening: typeof addr === 'object' && addr ? addr.port : 0 })}\n`);
