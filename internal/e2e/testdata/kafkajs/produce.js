// Produces records to Kafka with kafkajs, for Signal's interoperability
// test (internal/e2e/interop_test.go).
//
//   node produce.js BROKER TOPIC CODEC < records.json
//
// CODEC is none, gzip, snappy, lz4 or zstd. records.json is an array of
// {"key": base64 or null, "value": base64, "headers": {"name": "value"}}.
// Snappy uses kafkajs-snappy; LZ4 (frame format) and zstd use pure
// JavaScript codecs (lz4js, zstd-codec), so nothing is compiled.
'use strict';
const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs');
const SnappyCodec = require('kafkajs-snappy');
const lz4 = require('lz4js');
const { ZstdCodec } = require('zstd-codec');

const zstd = new Promise((resolve) => ZstdCodec.run((z) => resolve(new z.Simple())));

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;
CompressionCodecs[CompressionTypes.LZ4] = () => ({
  async compress(encoder) { return Buffer.from(lz4.compress(encoder.buffer)); },
  async decompress(buffer) { return Buffer.from(lz4.decompress(buffer)); },
});
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  async compress(encoder) { return Buffer.from((await zstd).compress(encoder.buffer, 3)); },
  async decompress(buffer) { return Buffer.from((await zstd).decompress(buffer)); },
});

const codecs = {
  none: CompressionTypes.None, gzip: CompressionTypes.GZIP, snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4, zstd: CompressionTypes.ZSTD,
};

async function main() {
  const [broker, topic, codec] = process.argv.slice(2);
  if (!(codec in codecs)) throw new Error(`unknown codec ${codec}`);
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const messages = JSON.parse(input).map((r) => ({
    key: r.key === null ? null : Buffer.from(r.key, 'base64'),
    value: Buffer.from(r.value, 'base64'),
    headers: r.headers || {},
  }));
  const kafka = new Kafka({ clientId: 'signal-interop', brokers: [broker], logLevel: logLevel.ERROR });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  await producer.send({ topic, messages, compression: codecs[codec], acks: -1 });
  await producer.disconnect();
  console.log(`produced ${messages.length} message(s) with ${codec}`);
}

main().catch((err) => { console.error(err); process.exit(1); });
