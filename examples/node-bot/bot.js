// A bot's heartbeat for pingpong-relay: the design's message on bot:pingpong every 10 s.
const { createClient } = require('redis');

const BOT = process.env.BOT_NAME ?? 'node-bot';
const redis = createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
redis.on('error', (err) => console.error(`redis: ${err.message}`)); // it reconnects by itself

async function heartbeat() {
  const started = performance.now();
  await redis.ping(); // or time your exchange round trip: that is the latency to report
  const message = {
    type: 'ping',
    latency: Math.round((performance.now() - started) * 10) / 10,
    timestamp: Date.now(),
    source: BOT,
  };
  const receivers = await redis.publish('bot:pingpong', JSON.stringify(message));
  console.log(`published ${message.type} to ${receivers} relay(s)`);
}

async function main() {
  await redis.connect();
  for (;;) {
    await heartbeat().catch((err) => console.error(`heartbeat: ${err.message}`));
    await new Promise((resolve) => setTimeout(resolve, 10_000));
  }
}

main();
