// A tiny static file server for the browser viewer's dist folder (tests and local use).
//
//   node static-server.mjs DIR [PORT]      # PORT 0 or absent: a free port; prints the URL
//
// or, from another module: `const srv = await serveStatic(dir); srv.url; await srv.close();`
// Loopback only. GET and HEAD; `/` and folders serve their index.html; no caching headers.

import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

/** Serves `root` on 127.0.0.1:`port` (0: a free one). Resolves to {url, port, server, close()}. */
export async function serveStatic(root, { port = 0, host = '127.0.0.1', log = null } = {}) {
  const base = resolve(root);
  const sockets = new Set();
  const server = createServer(async (req, res) => {
    const done = (status, body, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      if (log) log(`${status} ${req.method} ${req.url}`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return done(405, 'method not allowed\n');
    let path;
    try {
      path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      return done(400, 'bad path\n');
    }
    if (path.includes('\0')) return done(400, 'bad path\n');
    let file = resolve(join(base, path));
    if (file !== base && !file.startsWith(base + sep)) return done(403, 'outside the served folder\n');
    try {
      let st = await stat(file);
      if (st.isDirectory()) {
        if (!path.endsWith('/')) {
          // Relative URLs in index.html must resolve inside the folder.
          res.writeHead(301, { location: path + '/' + (new URL(req.url, 'http://x').search) });
          return res.end();
        }
        file = join(file, 'index.html');
        st = await stat(file);
      }
      if (!st.isFile()) return done(404, 'not found\n');
      res.writeHead(200, {
        'content-type': MIME[extname(file).toLowerCase()] || 'application/octet-stream',
        'content-length': st.size,
      });
      if (log) log(`200 ${req.method} ${req.url}`);
      if (req.method === 'HEAD') return res.end();
      createReadStream(file).on('error', () => res.destroy()).pipe(res);
    } catch {
      return done(404, 'not found\n');
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => ok());
  });
  const actual = server.address().port;
  return {
    server,
    port: actual,
    url: `http://${host}:${actual}/`,
    close: () =>
      new Promise((ok) => {
        server.close(() => ok());
        for (const s of sockets) s.destroy();
      }),
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [dir, port] = process.argv.slice(2);
  if (!dir) {
    console.error('usage: node static-server.mjs DIR [PORT]');
    process.exit(2);
  }
  const srv = await serveStatic(dir, { port: Number(port || 0) });
  console.log(`serving ${resolve(dir)} at ${srv.url}`);
}
