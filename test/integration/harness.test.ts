// Checks the integration harness itself against real redis-server processes: single servers,
// the 3-master cluster, the sentinel setup and the fault proxy.
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { capture, rejection } from '../support/helpers.js';
import { startProxy } from './support/proxy.js';
import {
  command,
  disconnectClient,
  infoField,
  startCluster,
  startRedis,
  startSentinel,
  type RedisCluster,
  type RedisSentinelSetup,
  type RedisServer,
} from './support/redis.js';

/** Whether a process with this pid exists (signal 0 only checks). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Polls `check` every 50 ms until it returns true, for at most `timeoutMs`. */
async function eventually(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

describe('startRedis', () => {
  it('starts a server on a random free loopback port that answers PING', async () => {
    const [a, b] = await Promise.all([startRedis(), startRedis()]);
    try {
      for (const server of [a, b]) {
        expect(server.host).toBe('127.0.0.1');
        expect(server.port).not.toBe(6379);
        expect(processExists(server.pid)).toBe(true);
        expect(existsSync(server.dir)).toBe(true);
        expect(await server.cli('PING')).toBe('PONG\n');
        const info = String(await server.command(['INFO', 'server']));
        expect(infoField(info, 'process_id')).toBe(String(server.pid));
        expect(infoField(info, 'tcp_port')).toBe(String(server.port));
        expect(await server.cli('CONFIG', 'GET', 'save')).toBe('save\n\n');
        expect(await server.cli('CONFIG', 'GET', 'bind')).toBe('bind\n127.0.0.1\n');
      }
      expect(a.port).not.toBe(b.port);
      expect(existsSync(`${a.dir}/redis.log`)).toBe(true);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('stop() kills the pid and removes the dir, and can be called again', async () => {
    const server = await startRedis();
    await server.stop();
    expect(processExists(server.pid)).toBe(false);
    expect(server.alive).toBe(false);
    expect(existsSync(server.dir)).toBe(false);
    await server.stop();
    await expect(command(server.port, ['PING'], 1_000)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('restart() after a SIGKILL serves again on the same port, as a fresh process with no data', async () => {
    const server = await startRedis();
    try {
      await server.cli('SET', 'k', 'v');
      const { port, pid } = server;
      server.kill('SIGKILL');
      await server.exited();
      expect(processExists(pid)).toBe(false);
      await expect(server.cli('PING')).rejects.toThrow(/Connection refused/);
      await server.restart();
      expect(server.port).toBe(port);
      expect(server.pid).not.toBe(pid);
      expect(await server.cli('PING')).toBe('PONG\n');
      expect(await server.cli('GET', 'k')).toBe('\n'); // nothing was saved
    } finally {
      await server.stop();
    }
  });

  it('SIGSTOP makes a PING time out and SIGCONT makes it answer again', async () => {
    const server = await startRedis();
    const client = new Redis({ host: server.host, port: server.port, commandTimeout: 300, lazyConnect: true });
    try {
      await client.connect();
      expect(await client.ping()).toBe('PONG');
      server.kill('SIGSTOP');
      const started = performance.now();
      const error = await rejection(capture(client.ping()));
      expect((error as Error).message).toMatch(/timed out/i);
      expect(performance.now() - started).toBeGreaterThanOrEqual(290);
      await expect(command(server.port, ['PING'], 300)).rejects.toThrow(/no reply/);
      server.kill('SIGCONT');
      expect(await client.ping()).toBe('PONG');
      expect(await command(server.port, ['PING'], 1_000)).toBe('PONG');
    } finally {
      await disconnectClient(client);
      await server.stop();
    }
  });

  it('fails, saying how to install Redis, when redis-server is not on PATH', async () => {
    vi.stubEnv('PATH', '/nonexistent-dir');
    try {
      await expect(startRedis()).rejects.toThrow('apt-get install -y redis-server');
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('reports the end of the log when a server fails to start', async () => {
    await expect(startRedis({ args: ['--no-such-directive', 'x'] })).rejects.toThrow(/exited at once[\s\S]*no-such-directive/);
  });
});

describe('startCluster', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startCluster();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('has 3 masters that together cover all 16384 slots', async () => {
    expect(cluster.nodes).toHaveLength(3);
    expect(new Set(cluster.nodes.map((n) => n.port)).size).toBe(3);
    for (const node of cluster.nodes) {
      expect(node.port).toBeLessThanOrEqual(55_000);
      const info = await node.cli('CLUSTER', 'INFO');
      expect(infoField(info, 'cluster_state')).toBe('ok');
      expect(infoField(info, 'cluster_slots_assigned')).toBe('16384');
      expect(infoField(info, 'cluster_size')).toBe('3');
      expect(infoField(await node.cli('INFO', 'replication'), 'role')).toBe('master');
    }
    const owners = await Promise.all([0, 5_000, 10_000, 16_383].map((slot) => cluster.slotOwner(slot)));
    expect(new Set(owners)).toEqual(new Set([0, 1, 2]));
  });

  it('serves a Cluster client, and migrateSlot moves a slot with its keys to another node', async () => {
    const client = new Cluster(cluster.startupNodes, { redisOptions: { commandTimeout: 5_000 } });
    try {
      await client.set('plain-key', 'plain-value');
      expect(await client.get('plain-key')).toBe('plain-value');

      const slot = Number(await cluster.nodes[0]!.cli('CLUSTER', 'KEYSLOT', '{moving}'));
      const keys = Array.from({ length: 250 }, (_, i) => `{moving}:${i}`); // more than one MIGRATE batch
      const pipeline = client.pipeline();
      keys.forEach((key, i) => pipeline.set(key, `value-${i}`));
      await pipeline.exec();
      const from = await cluster.slotOwner(slot);
      const to = (from + 1) % 3;
      expect(await cluster.nodes[from]!.cli('CLUSTER', 'COUNTKEYSINSLOT', String(slot))).toBe('250\n');

      await cluster.migrateSlot(slot, to);

      expect(await cluster.slotOwner(slot)).toBe(to);
      expect(await cluster.nodes[to]!.cli('CLUSTER', 'COUNTKEYSINSLOT', String(slot))).toBe('250\n');
      expect(await cluster.nodes[from]!.cli('CLUSTER', 'COUNTKEYSINSLOT', String(slot))).toBe('0\n');
      for (const node of cluster.nodes) {
        expect(infoField(await node.cli('CLUSTER', 'INFO'), 'cluster_state')).toBe('ok');
      }
      expect(await client.mget(keys)).toEqual(keys.map((_, i) => `value-${i}`));
      expect(await client.get('plain-key')).toBe('plain-value');
    } finally {
      await disconnectClient(client);
    }
  });
});

describe('startSentinel', () => {
  let setup: RedisSentinelSetup;
  beforeAll(async () => {
    setup = await startSentinel();
  });
  afterAll(async () => {
    await setup?.stop();
  });

  it('failover() promotes the replica, and a sentinel-configured client writes to the new master', async () => {
    const sentinelClient = (): Redis =>
      new Redis({ sentinels: setup.sentinelAddresses, name: setup.masterName, commandTimeout: 5_000, lazyConnect: true });
    const before = sentinelClient();
    const outage: Error[] = []; // while no master answers, the client reports its reconnect failures
    before.on('error', (error: Error) => outage.push(error));
    let after: Redis | undefined;
    try {
      await before.set('before', '1');
      expect(await setup.masterPort()).toBe(setup.master.port);
      await eventually('the replica to receive the write', async () => (await setup.replica.cli('GET', 'before')) === '1\n');

      const newPort = await setup.failover();

      expect(newPort).toBe(setup.replica.port);
      expect(setup.master.alive).toBe(false);
      expect(infoField(await setup.replica.cli('INFO', 'replication'), 'role')).toBe('master');
      after = sentinelClient();
      await after.set('after', '2');
      expect(await setup.replica.cli('GET', 'after')).toBe('2\n');
      expect(await setup.replica.cli('GET', 'before')).toBe('1\n');
      // The client made before the failover finds the new master too.
      await before.set('before-again', '3');
      expect(await setup.replica.cli('GET', 'before-again')).toBe('3\n');
    } finally {
      await disconnectClient(before);
      if (after) await disconnectClient(after);
    }
  });
});

describe('startProxy', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server?.stop();
  });

  /** A proxy in front of the server and a client connected through it, closed by `use` when done. */
  async function throughProxy(
    use: (proxy: Awaited<ReturnType<typeof startProxy>>, client: Redis) => Promise<void>,
    options: RedisOptions = {},
  ): Promise<void> {
    const proxy = await startProxy(server);
    const client = new Redis({ host: proxy.host, port: proxy.port, lazyConnect: true, ...options });
    try {
      await client.connect();
      await use(proxy, client);
    } finally {
      await disconnectClient(client);
      await proxy.close();
    }
  }

  it('pass forwards commands both ways', async () => {
    await throughProxy(async (proxy, client) => {
      expect(proxy.host).toBe('127.0.0.1');
      expect(proxy.port).not.toBe(server.port);
      await client.set('via-proxy', 'yes');
      expect(await server.cli('GET', 'via-proxy')).toBe('yes\n');
      expect(await client.get('via-proxy')).toBe('yes');
      expect(proxy.connections()).toBe(1);
    });
  });

  it('blackhole makes a command hang until the client gives up, on open and new connections', async () => {
    await throughProxy(
      async (proxy, client) => {
        expect(await client.ping()).toBe('PONG');
        proxy.mode('blackhole');
        const started = performance.now();
        const error = await rejection(capture(client.ping()));
        expect((error as Error).message).toMatch(/timed out/i);
        expect(performance.now() - started).toBeGreaterThanOrEqual(290);
        await expect(command(proxy.port, ['PING'], 300)).rejects.toThrow(/no reply/);
        expect(proxy.connections()).toBeGreaterThanOrEqual(1);
      },
      { commandTimeout: 300 },
    );
  });

  it('reset makes the client see a connection reset, on open and new connections', async () => {
    const errors: Error[] = [];
    await throughProxy(
      async (proxy, client) => {
        client.on('error', (error: Error) => errors.push(error));
        expect(await client.ping()).toBe('PONG');
        proxy.mode('reset');
        await eventually('the client to see the connection end', () => client.status === 'end');
        expect(errors.map((e) => (e as NodeJS.ErrnoException).code)).toContain('ECONNRESET');
        await expect(client.ping()).rejects.toThrow(/Connection is closed/);
        await expect(command(proxy.port, ['PING'], 1_000)).rejects.toThrow(/ECONNRESET|closed the connection/);
        expect(proxy.connections()).toBe(0);
      },
      { retryStrategy: () => null, maxRetriesPerRequest: 0 },
    );
  });

  it('blackhole-existing kills the connections open at the switch for good (bytes and closes swallowed) while new ones pass', async () => {
    await throughProxy(
      async (proxy, client) => {
        expect(await client.ping()).toBe('PONG');
        const raw = net.connect({ host: proxy.host, port: proxy.port });
        raw.on('error', () => {});
        await new Promise((resolve) => raw.once('connect', resolve));
        proxy.mode('blackhole-existing');
        expect(await command(proxy.port, ['PING'], 1_000)).toBe('PONG');
        expect(((await rejection(capture(client.ping()))) as Error).message).toMatch(/timed out/i);
        // Dead for good: passing again does not revive it, as a dropped flow's state is gone.
        proxy.mode('pass');
        expect(((await rejection(capture(client.ping()))) as Error).message).toMatch(/timed out/i);
        expect(await command(proxy.port, ['PING'], 1_000)).toBe('PONG');
        // A close from the client never reaches the other end, nor comes back.
        let ended = false;
        raw.on('end', () => (ended = true));
        raw.end();
        await sleep(300);
        expect(ended).toBe(false);
        raw.destroy();
      },
      { commandTimeout: 300 },
    );
  });

  it('a delay adds at least the delay each way and keeps the order', async () => {
    await throughProxy(async (proxy, client) => {
      proxy.mode({ delayMs: 150 });
      let started = performance.now();
      expect(await client.ping()).toBe('PONG');
      expect(performance.now() - started).toBeGreaterThanOrEqual(300);

      await client.del('counter');
      const pipeline = client.pipeline();
      for (let i = 0; i < 50; i++) pipeline.incr('counter');
      const results = await pipeline.exec();
      expect(results?.map(([, value]) => value)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));

      proxy.mode('pass');
      started = performance.now();
      expect(await client.ping()).toBe('PONG');
      expect(performance.now() - started).toBeLessThan(150);
    });
  });
});
