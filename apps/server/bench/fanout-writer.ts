/**
 * The writer of bench/fanout.ts, in a process of its own: its `updateMyInfo` latency is then
 * not held up by the thousands of subscriber sockets the bench process reads. On
 * `{ type: 'write', port, path, headers, body }` it makes the call (keep-alive) and answers
 * `{ type: 'wrote', status, body, ms }`.
 */
import { Agent, request } from 'node:http';

interface Write {
  type: 'write';
  port: number;
  path: string;
  headers: Record<string, string>;
  body: string;
}

if (!process.send) throw new Error('fanout-writer.ts runs as a forked child of bench/fanout.ts');
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

process.on('message', (message: Write) => {
  const t0 = performance.now();
  const req = request(
    {
      host: '127.0.0.1',
      port: message.port,
      method: 'POST',
      path: message.path,
      headers: message.headers,
      agent,
    },
    (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () =>
        process.send!({ type: 'wrote', status: res.statusCode, body, ms: performance.now() - t0 }),
      );
    },
  );
  req.on('error', (error) =>
    process.send!({ type: 'wrote', status: 0, body: String(error), ms: 0 }),
  );
  req.end(message.body);
});
process.on('disconnect', () => agent.destroy());
