// Reference Shopify webhook receiver for bench/webhooks.sh, built the way Shopify's own Node library
// documents it: read the raw body, `shopify.webhooks.validate({rawBody, rawRequest, rawResponse})`,
// answer 200 when valid and 401 otherwise. Nothing is stored: this is the floor a durable receiver
// is compared against.
//
//   PORT=8081 SHOPIFY_API_SECRET=bench-secret WORKERS=2 node server.js
//
// Environment: PORT (default 8081), HOST (default 127.0.0.1), WORKERS (node:cluster workers,
// default 2), SHOPIFY_API_SECRET (required), SHOPIFY_API_KEY (default bench-key).
'use strict';

const cluster = require('node:cluster');
const http = require('node:http');

const port = Number(process.env.PORT || 8081);
const host = process.env.HOST || '127.0.0.1';
const workers = Math.max(1, Number(process.env.WORKERS || 2));
const secret = process.env.SHOPIFY_API_SECRET;
if (!secret) {
  console.error('SHOPIFY_API_SECRET is required');
  process.exit(2);
}

if (cluster.isPrimary) {
  for (let i = 0; i < workers; i += 1) cluster.fork();
  let ready = 0;
  cluster.on('listening', () => {
    ready += 1;
    if (ready === workers) {
      console.log(`reference receiver: ${workers} worker(s) on http://${host}:${port} (node ${process.version})`);
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      console.error(`worker ${worker.process.pid} exited (${signal || code})`);
      process.exit(1);
    }
  });
  let stopping = false;
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers)) worker.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  // The adapter must be loaded before the library is used.
  require('@shopify/shopify-api/adapters/node');
  const { shopifyApi, ApiVersion, LogSeverity } = require('@shopify/shopify-api');

  const shopify = shopifyApi({
    apiKey: process.env.SHOPIFY_API_KEY || 'bench-key',
    apiSecretKey: secret,
    hostName: `${host}:${port}`,
    hostScheme: 'http',
    apiVersion: ApiVersion.October26,
    isEmbeddedApp: true,
    logger: { level: LogSeverity.Error },
  });

  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
      return;
    }
    if (req.method !== 'POST' || !(req.url === '/webhooks' || req.url.startsWith('/webhooks/'))) {
      res.writeHead(404);
      res.end();
      return;
    }
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', async () => {
      try {
        const rawBody = Buffer.concat(chunks).toString('utf8');
        const check = await shopify.webhooks.validate({ rawBody, rawRequest: req, rawResponse: res });
        if (check.valid) {
          res.writeHead(200);
          res.end();
        } else {
          res.writeHead(401, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: check.reason }));
        }
      } catch (err) {
        res.writeHead(500);
        res.end(String(err && err.message));
      }
    });
  });
  server.keepAliveTimeout = 65_000;
  server.listen(port, host);
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}
