// The backend of the bench's fan-out part: the Express template (socketConnections, SocketService, the memory
// store) behind wsdeploy dev, every authenticated socket a user of its own, all subscribed to one topic with
// presence off (an audience). POST /publish?way=...&concurrency=N&rtt=MS sends one message to every one of them and
// answers what the call took and the process's peak RSS meanwhile:
//   way=article   the article's loop: aws-sdk v2, one postToConnection per socket, all at once, its defaults
//   way=template  the template's publish(): at most `concurrency` posts in flight on kept-alive connections
//   way=function  the template's publish() handing the audience to the bundled fan-out function (dev runs it;
//                 `fanout: true`), in chunks of 5,000, which posts from next to @connections
// rtt=MS puts @connections (or, for way=function, the Lambda API) behind a proxy that answers each request MS later than dev does, and the first request
// on a new connection 3 x MS later (TCP and TLS 1.3 handshakes, then the request): a model of the distance between a
// backend and the region, not a figure of AWS's. dev is plain HTTP, so the article's client gets the agent aws-sdk v2
// uses for an https endpoint (at most 50 sockets, no keep-alive), as against the real API.
// Prints its URL; reads the backend env file dev writes (ENV_FILE) at its first request; stops when stdin ends.
'use strict';
const http = require('node:http');
const express = require('express');
const AWS = require('aws-sdk');
const { socketConnections, SocketService, MemoryConnectionStore } = require(process.env.TEMPLATE);

const TOPIC = 'audience';
const store = new MemoryConnectionStore();
let router = null;
const services = new Map(); // `${concurrency}/${rtt}` -> SocketService
const articles = new Map(); // rtt -> the v2 client
const proxies = new Map(); // rtt -> the endpoint of a proxy that far away

function ready() {
  if (router) return;
  process.loadEnvFile(process.env.ENV_FILE);
  const sockets = new SocketService(store, process.env, { sweep: false, presence: false, fanout: false });
  router = socketConnections({
    express,
    store,
    sockets,
    userFromToken: async (token) => {
      await store.subscribe(token, TOPIC);
      return token;
    },
    signingSecret: process.env.WS_SIGNING_SECRET,
  });
}

// A proxy in front of dev's @connections that holds each answer `rtt` ms: every request then costs one round trip
// of that length, however many are in flight (as across a network, where the distance is not a queue).
async function endpointAt(rtt, base = process.env.WS_API_ENDPOINT) {
  if (rtt === 0) return base;
  const key = `${rtt} ${base}`;
  if (!proxies.has(key)) {
    const upstream = new URL(base);
    const agent = new http.Agent({ keepAlive: true });
    const server = http.createServer((req, res) => {
      const hold = req.socket.served ? rtt : 3 * rtt;
      req.socket.served = true;
      const out = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent },
        (answer) => {
          const chunks = [];
          answer.on('data', (c) => chunks.push(c));
          answer.on('end', () =>
            setTimeout(() => {
              res.writeHead(answer.statusCode, answer.headers);
              res.end(Buffer.concat(chunks));
            }, hold),
          );
        },
      );
      out.on('error', () => res.destroy());
      req.pipe(out);
    });
    server.keepAliveTimeout = 60000;
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    // The SDKs sign the Host they send to; the proxy passes it on unchanged, so dev checks the same signature.
    const path = upstream.pathname === '/' ? '' : upstream.pathname;
    proxies.set(key, `http://127.0.0.1:${server.address().port}${path}`);
  }
  return proxies.get(key);
}

async function template(concurrency, rtt, data) {
  const key = `${concurrency}/${rtt}`;
  if (!services.has(key)) {
    const env = { ...process.env, WS_API_ENDPOINT: await endpointAt(rtt) };
    // fanout: false, so that this way posts every message itself, whatever the env file offers.
    services.set(key, new SocketService(store, env, { concurrency, sweep: false, presence: false, fanout: false }));
  }
  return services.get(key).publish(TOPIC, data);
}

// The whole audience through the fan-out function, the backend's one call per chunk across the distance.
async function throughFunction(rtt, data) {
  const key = `function/${rtt}`;
  if (!services.has(key)) {
    const env = { ...process.env, WS_FANOUT_FUNCTION_ENDPOINT: await endpointAt(rtt, process.env.WS_FANOUT_FUNCTION_ENDPOINT) };
    services.set(key, new SocketService(store, env, { sweep: false, presence: false, fanout: { threshold: 1 } }));
  }
  return services.get(key).publish(TOPIC, data);
}

// As the widely copied AWS example writes it (aws-sdk v2, every post at once, the SDK's own agent and retries).
async function article(rtt, data) {
  if (!articles.has(rtt)) {
    articles.set(rtt, new AWS.ApiGatewayManagementApi({
      endpoint: await endpointAt(rtt),
      region: process.env.WS_API_REGION,
      credentials: new AWS.Credentials(process.env.WS_API_ACCESS_KEY_ID, process.env.WS_API_SECRET_ACCESS_KEY),
      // v2's https default (https://docs.aws.amazon.com/sdk-for-javascript/v2/developer-guide/node-configuring-maxsockets.html,
      // node-reusing-connections.html: keep-alive is off unless AWS_NODEJS_CONNECTION_REUSE_ENABLED).
      httpOptions: { agent: new http.Agent({ maxSockets: 50, keepAlive: false }) },
    }));
  }
  const api = articles.get(rtt);
  const Data = JSON.stringify({ type: 'push', id: 0, topic: TOPIC, data });
  const ids = (await store.subscribers(TOPIC)).flatMap((u) => store.forUser(u));
  const results = await Promise.allSettled(ids.map((ConnectionId) => api.postToConnection({ ConnectionId, Data }).promise()));
  const failed = results.filter((r) => r.status === 'rejected');
  return { delivered: results.length - failed.length, gone: 0, failed: failed.length, error: failed[0]?.reason?.code };
}

const app = express();
app.use((req, res, next) => {
  ready();
  router(req, res, next);
});
app.post('/publish', async (req, res, next) => {
  try {
    const rtt = Number(req.query.rtt ?? 0);
    const concurrency = Number(req.query.concurrency ?? 32);
    await endpointAt(rtt);
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 2);
    const started = performance.now();
    const data = { at: Date.now() };
    const way = req.query.way;
    const result =
      way === 'article' ? await article(rtt, data) : way === 'function' ? await throughFunction(rtt, data) : await template(concurrency, rtt, data);
    const callMs = performance.now() - started;
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    res.json({ ...result, call_ms: callMs, rss_before_mb: before / 2 ** 20, rss_peak_mb: peak / 2 ** 20 });
  } catch (err) {
    next(err);
  }
});
const server = app.listen(0, '127.0.0.1', () => process.stdout.write(`http://127.0.0.1:${server.address().port}\n`));
server.keepAliveTimeout = 60000;
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
