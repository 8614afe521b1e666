// One HTTP server variant for benchmarks/http.mjs, run as a forked child (it needs the IPC
// channel): `GET /` answers 200 with a small JSON body, behind the rate limiter the variant names
// (or none). Not meant to be run by hand.
//
//   argv: <variant id>
//   env:  BULWARK_HTTP_REDIS_PORT  port of the harness's redis-server (Redis variants)
//         BULWARK_HTTP_KEY_HEADER  when set, limiters key by this request header instead of the IP
//         BULWARK_HTTP_PEER_HEADERS  'draft' (default) or 'default': which headers the peers send
//
// Messages to the parent: { type: 'ready', port, cpus } once listening; { type: 'unavailable',
// reason } when the variant cannot be built (bulwark adapter not built yet); { type: 'failed',
// error } on any other startup error. It answers { type: 'stats' } with { type: 'stats',
// handled }, the number of requests that reached the route handler (a denied request never
// does), and exits when the parent disconnects.
import { readFileSync } from 'node:fs';

const HOST = '127.0.0.1';
const LIMIT = 1_000_000_000; // no run gets near it: nothing is ever denied
const WINDOW_MS = 60_000;
const BODY = { hello: 'world' };

const variant = process.argv[2];
const redisPort = Number(process.env.BULWARK_HTTP_REDIS_PORT);
const keyHeader = process.env.BULWARK_HTTP_KEY_HEADER || undefined;
const peerHeaders = process.env.BULWARK_HTTP_PEER_HEADERS === 'default' ? 'default' : 'draft';

if (typeof process.send !== 'function') {
  console.error('http-server.mjs is started by benchmarks/http.mjs (it needs an IPC channel)');
  process.exit(1);
}
process.on('disconnect', () => process.exit(0));

let handled = 0;
process.on('message', (message) => {
  if (message?.type === 'stats') process.send({ type: 'stats', handled });
});

function allowedCpus() {
  try {
    return /^Cpus_allowed_list:\s*(.+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]?.trim();
  } catch {
    return undefined;
  }
}

class Unavailable extends Error {}

// One ioredis client per Redis variant, with the options bulwark's README asks for (they change
// nothing while Redis is up; the peers get the same client so only the limiter differs).
async function redisClient() {
  if (!Number.isInteger(redisPort) || redisPort <= 0) throw new Error('BULWARK_HTTP_REDIS_PORT is not set');
  const { Redis } = await import('ioredis');
  const client = new Redis({
    host: HOST,
    port: redisPort,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
    lazyConnect: true,
  });
  client.on('error', (error) => console.error(`[${variant}] ioredis: ${error.message}`));
  await client.connect();
  return client;
}

// bulwark's limiter: a fixed window with a limit no run reaches. On Redis, any decision Redis did
// not make is a denial (onStoreError 'fail-closed'), so the harness sees it as a non-2xx answer
// instead of a fast local decision flattering the figures; the timeout is long for the same
// reason (the peers have none either): a stall of the shared machine must not turn into fallbacks.
async function bulwarkLimiter(storeKind) {
  const { rateLimiter, fixedWindow, memoryStore } = await import('../dist/index.js');
  let store;
  if (storeKind === 'redis') {
    const { redisStore } = await import('../dist/redis.js');
    store = redisStore(await redisClient(), { prefix: `bench-${framework}-bulwark:`, timeoutMs: 10_000, onStoreError: 'fail-closed' });
  } else {
    store = memoryStore();
  }
  return rateLimiter({ name: 'http', algorithm: fixedWindow({ limit: LIMIT, windowMs: WINDOW_MS }), store });
}

// Options for bulwark's adapters: the key comes from the header in many-key mode (otherwise the
// adapter's default, the client IP).
function bulwarkAdapterOptions(extra) {
  return keyHeader ? { ...extra, key: (req) => req.headers[keyHeader] } : extra;
}

async function importAdapter(file, name) {
  const mod = await import(file);
  if (typeof mod[name] !== 'function') throw new Unavailable(`adapter missing: ${file.replace('../', '')} has no ${name}`);
  return mod[name];
}

async function buildExpress(limiter, store) {
  const { default: express } = await import('express');
  const app = express();
  if (limiter === 'express-rate-limit') {
    const { rateLimit } = await import('express-rate-limit');
    const options = {
      windowMs: WINDOW_MS,
      limit: LIMIT,
      ...(peerHeaders === 'draft' ? { standardHeaders: 'draft-8', legacyHeaders: false } : {}),
      ...(keyHeader ? { keyGenerator: (req) => req.headers[keyHeader] } : {}),
    };
    if (store === 'redis') {
      const { RedisStore } = await import('rate-limit-redis');
      const client = await redisClient();
      options.store = new RedisStore({ sendCommand: (command, ...args) => client.call(command, ...args), prefix: 'bench-erl:' });
    }
    app.use(rateLimit(options));
  } else if (limiter === 'bulwark') {
    const rateLimitMiddleware = await importAdapter('../dist/express.js', 'rateLimitMiddleware');
    const headers = variant.endsWith('-noheaders') ? 'none' : 'draft';
    app.use(rateLimitMiddleware(await bulwarkLimiter(store), bulwarkAdapterOptions({ headers })));
  } else if (limiter === 'hook') {
    app.use((req, res, next) => next());
  } else if (limiter === 'headers') {
    // What sending the draft's two headers costs by itself: constant values, no limiter.
    app.use((req, res, next) => {
      res.setHeader('RateLimit-Policy', '"http";q=1000000000;w=60');
      res.setHeader('RateLimit', '"http";r=999999999;t=60');
      next();
    });
  }
  app.get('/', (req, res) => {
    handled++;
    res.json(BODY);
  });
  return new Promise((resolve, reject) => {
    const server = app.listen(0, HOST, (error) => (error ? reject(error) : resolve(server.address().port)));
    server.once('error', reject);
  });
}

async function buildFastify(limiter, store) {
  const { default: Fastify } = await import('fastify');
  const app = Fastify({ logger: false });
  if (limiter === '@fastify/rate-limit') {
    const { default: fastifyRateLimit } = await import('@fastify/rate-limit');
    await app.register(fastifyRateLimit, {
      max: LIMIT,
      timeWindow: WINDOW_MS,
      ...(peerHeaders === 'draft' ? { enableDraftSpec: true } : {}),
      ...(keyHeader ? { keyGenerator: (req) => req.headers[keyHeader] } : {}),
      ...(store === 'redis' ? { redis: await redisClient(), nameSpace: 'bench-frl-' } : {}),
    });
  } else if (limiter === 'bulwark') {
    const rateLimitPlugin = await importAdapter('../dist/fastify.js', 'rateLimitPlugin');
    const headers = variant.endsWith('-noheaders') ? { headers: 'none' } : {};
    await app.register(rateLimitPlugin, bulwarkAdapterOptions({ limiter: await bulwarkLimiter(store), ...headers }));
  } else if (limiter === 'hook') {
    app.addHook('onRequest', (request, reply, done) => done());
  } else if (limiter === 'headers') {
    // What sending the draft's two headers costs by itself: constant values, no limiter.
    app.addHook('onRequest', (request, reply, done) => {
      reply.header('RateLimit-Policy', '"http";q=1000000000;w=60');
      reply.header('RateLimit', '"http";r=999999999;t=60');
      done();
    });
  }
  app.get('/', async () => {
    handled++;
    return BODY;
  });
  await app.listen({ port: 0, host: HOST });
  return app.server.address().port;
}

const [framework, limiter, store] = {
  'express-bare': ['express'],
  'express-erl-memory': ['express', 'express-rate-limit', 'memory'],
  'express-erl-redis': ['express', 'express-rate-limit', 'redis'],
  'express-bulwark-memory': ['express', 'bulwark', 'memory'],
  'express-bulwark-redis': ['express', 'bulwark', 'redis'],
  'express-hook': ['express', 'hook'],
  'express-headers': ['express', 'headers'],
  'express-bulwark-memory-noheaders': ['express', 'bulwark', 'memory'],
  'fastify-bare': ['fastify'],
  'fastify-frl-memory': ['fastify', '@fastify/rate-limit', 'memory'],
  'fastify-frl-redis': ['fastify', '@fastify/rate-limit', 'redis'],
  'fastify-bulwark-memory': ['fastify', 'bulwark', 'memory'],
  'fastify-bulwark-redis': ['fastify', 'bulwark', 'redis'],
  'fastify-hook': ['fastify', 'hook'],
  'fastify-headers': ['fastify', 'headers'],
  'fastify-bulwark-memory-noheaders': ['fastify', 'bulwark', 'memory'],
}[variant] ?? [];

try {
  if (framework === undefined) throw new Error(`unknown variant ${variant}`);
  const port = framework === 'express' ? await buildExpress(limiter, store) : await buildFastify(limiter, store);
  process.send({ type: 'ready', port, cpus: allowedCpus() });
} catch (error) {
  // An open Redis client would keep this process alive: exit once the message is out.
  const message =
    error instanceof Unavailable ? { type: 'unavailable', reason: error.message } : { type: 'failed', error: String(error?.stack ?? error) };
  process.send(message, () => process.exit(1));
}
