// The benchmark's upstream: a minimal node:http server answering a small JSON body.
import { createServer } from 'node:http';

const body = JSON.stringify({ ok: true, items: [1, 2, 3] });
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`${JSON.stringify({ listening: typeof addr === 'object' && addr ? addr.port : 0 })}\n`);
});
