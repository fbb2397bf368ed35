#!/usr/bin/env node
// Strom client-matrix scenario for kafkajs.
//
// Usage: node scenario.js BOOTSTRAP < scenario.json   (after `npm ci` in this folder)
//
// The scenario (topic, records, config to set) comes as JSON on stdin from the Go package
// github.com/stromhq/strom/integration/clients, which also defines the features. One JSON line per feature
// goes to stdout: {"feature": ..., "result": "pass"|"fail"|"n/a", "detail": ...}. kafkajs logs go to stderr.
//
// kafkajs ships gzip only; snappy comes from the kafkajs-snappy plugin pinned in package.json (pure JS).
// lz4 and zstd plugins need native builds and are not installed: those steps report n/a.
'use strict'

const { Kafka, CompressionTypes, CompressionCodecs, ConfigResourceTypes, logLevel } = require('kafkajs')

CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy')

const SETTLE_TIMEOUT = 15000 // ms; metadata and config changes propagate to brokers asynchronously
const SETTLE_POLL = 200
const TIME_GAP = 30
const READ_TIMEOUT = 30000

class NotSupported extends Error {}

// The codecs this installation can produce (kafkajs' own CompressionCodecs entries for the others exist
// but throw KafkaJSNotImplemented).
const available = new Set(['none', 'gzip', 'snappy'])

const codecs = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
}

function emit (feature, result, detail = '') {
  process.stdout.write(JSON.stringify({ feature, result, detail }) + '\n')
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// stderrLogger keeps stdout for result lines only.
const stderrLogger = () => ({ level, log }) => {
  process.stderr.write(`kafkajs ${level}: ${log.message} ${log.error || ''}\n`)
}

class Driver {
  constructor (bootstrap) {
    this.kafka = new Kafka({
      clientId: 'strom-matrix-kafkajs',
      brokers: bootstrap.split(','),
      logLevel: logLevel.WARN,
      logCreator: stderrLogger,
    })
    this.admin = this.kafka.admin()
  }

  async connect () { await this.admin.connect() }
  async close () { await this.admin.disconnect() }

  async createTopic (topic, partitions) {
    const created = await this.admin.createTopics({
      topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
      waitForLeaders: true,
    })
    if (!created) throw new Error('createTopics returned false (topic already exists)')
  }

  async partitionCount (topic) {
    const md = await this.admin.fetchTopicMetadata({ topics: [topic] })
    return md.topics[0].partitions.length
  }

  async produce (topic, codec, idempotent, records) {
    if (codecs[codec] === undefined) throw new Error(`unknown codec ${codec}`)
    if (!available.has(codec)) {
      throw new NotSupported(`kafkajs ships gzip only; ${codec} needs a native codec plugin, not installed`)
    }
    const producer = this.kafka.producer(idempotent
      ? { idempotent: true, maxInFlightRequests: 1 }
      : { allowAutoTopicCreation: false })
    await producer.connect()
    try {
      await producer.send({
        topic,
        acks: -1,
        compression: codecs[codec],
        messages: records.map((r) => ({
          partition: r.partition,
          key: r.key,
          value: r.value,
          headers: Object.fromEntries(r.headers.map((h) => [h.key, h.value])),
        })),
      })
    } finally {
      await producer.disconnect()
    }
  }

  async endOffset (topic, partition) {
    const offs = await this.admin.fetchTopicOffsets(topic)
    const p = offs.find((o) => o.partition === partition)
    if (!p) throw new Error(`partition ${partition} missing from offsets`)
    return Number(p.high)
  }

  async offsetForTime (topic, partition, ts) {
    const offs = await this.admin.fetchTopicOffsetsByTimestamp(topic, ts)
    const p = offs.find((o) => o.partition === partition)
    if (!p) throw new Error(`partition ${partition} missing from offsets`)
    return Number(p.offset)
  }

  // readAll reads every partition from offset 0 up to ends[p]. kafkajs has no manual assignment: it joins a
  // fresh consumer group (so this also exercises the group protocol), starts from the beginning, commits
  // nothing.
  async readAll (topic, ends) {
    const got = {}
    const left = new Set()
    for (const [p, end] of Object.entries(ends)) {
      got[p] = []
      if (end > 0) left.add(Number(p))
    }
    if (left.size === 0) return got
    const consumer = this.kafka.consumer({ groupId: `strom-matrix-kafkajs-${topic}`, maxWaitTimeInMs: 200 })
    await consumer.connect()
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true })
      let done
      let crashed
      const finished = new Promise((resolve, reject) => { done = resolve; crashed = reject })
      // A consumer crash (e.g. no group coordinator) would otherwise only show up as the timeout below.
      consumer.on(consumer.events.CRASH, ({ payload }) => crashed(new Error(`consumer crashed: ${payload.error && payload.error.message}`)))
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          const off = Number(message.offset)
          if (off < ends[partition]) {
            got[partition].push({
              offset: off,
              key: message.key.toString(),
              value: message.value.toString(),
              headers: Object.entries(message.headers || {}).map(([key, value]) => ({ key, value: value.toString() })),
            })
          }
          if (off >= ends[partition] - 1) {
            left.delete(partition)
            if (left.size === 0) done()
          }
        },
      })
      let timer
      const timeout = new Promise((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out, partitions ${[...left]} unfinished`)), READ_TIMEOUT)
      })
      try {
        await Promise.race([finished, timeout])
      } finally {
        clearTimeout(timer) // a pending timer would keep node alive for READ_TIMEOUT after the scenario
      }
    } finally {
      await consumer.disconnect()
    }
    return got
  }

  async setTopicConfig (topic, key, value) {
    // kafkajs 2.2.4 has only the legacy AlterConfigs (replaces the topic's whole dynamic config).
    await this.admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: key, value }] }],
    })
  }

  async topicConfig (topic, key) {
    const res = await this.admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: [key] }],
    })
    for (const r of res.resources) {
      for (const e of r.configEntries) {
        if (e.configName === key) return e.configValue
      }
    }
    throw new Error(`config ${key} not described`)
  }
}

async function poll (fn) {
  const deadline = Date.now() + SETTLE_TIMEOUT
  for (;;) {
    let err
    try {
      if (await fn()) return
    } catch (e) {
      if (e instanceof NotSupported) throw e
      err = e
    }
    if (Date.now() > deadline) throw err || new Error('timed out')
    await sleep(SETTLE_POLL)
  }
}

async function step (feature, fn, results) {
  try {
    await fn()
  } catch (e) {
    const na = e instanceof NotSupported
    results[feature] = na ? 'n/a' : 'fail'
    emit(feature, results[feature], na ? e.message : `${e.name}: ${e.message}`)
    return
  }
  results[feature] = 'pass'
  emit(feature, 'pass')
}

function compare (p, want, got) {
  const n = Math.min(want.length, got.length)
  for (let i = 0; i < n; i++) {
    const w = want[i]
    const g = got[i]
    if (g.offset !== i) return `partition ${p} record ${i}: offset ${g.offset}, want ${i}`
    if (g.key !== w.key) return `partition ${p} offset ${i}: key ${g.key}, want ${w.key}`
    if (g.value !== w.value) return `partition ${p} offset ${i}: value ${g.value.slice(0, 60)}, want ${w.value.slice(0, 60)}`
    if (JSON.stringify(g.headers) !== JSON.stringify(w.headers)) {
      return `partition ${p} offset ${i}: headers ${JSON.stringify(g.headers)}, want ${JSON.stringify(w.headers)}`
    }
  }
  if (got.length !== want.length) return `partition ${p}: ${got.length} records, want ${want.length}`
  return ''
}

async function run (d, sc) {
  const results = {}
  const topic = sc.topic

  await step('create-topic', async () => {
    await d.createTopic(topic, sc.partitions)
    await poll(async () => (await d.partitionCount(topic)) === sc.partitions)
  }, results)

  for (const st of sc.produce) {
    await step(st.feature, () => d.produce(topic, st.codec, st.idempotent, st.records), results)
  }

  await step('consume-by-offset', async () => {
    const want = {}
    for (const st of sc.produce) {
      if (results[st.feature] !== 'pass') continue
      for (const r of st.records) (want[r.partition] = want[r.partition] || []).push(r)
    }
    const ends = {}
    for (let p = 0; p < sc.partitions; p++) ends[p] = await d.endOffset(topic, p)
    const got = await d.readAll(topic, ends)
    for (let p = 0; p < sc.partitions; p++) {
      const diff = compare(p, (want[p] || []).map((r) => ({ key: r.key, value: r.value, headers: r.headers })), got[p])
      if (diff) throw new Error(diff)
    }
  }, results)

  await step('list-offsets-time', async () => {
    const p = sc.time_partition
    const [a, b] = sc.time_records
    await d.produce(topic, 'none', false, [a])
    await sleep(TIME_GAP)
    const mid = Date.now()
    await sleep(TIME_GAP)
    await d.produce(topic, 'none', false, [b])
    const end = await d.endOffset(topic, p)
    const got = await d.offsetForTime(topic, p, mid)
    if (got !== end - 1) throw new Error(`offset for timestamp ${mid} is ${got}, want ${end - 1} (the second record)`)
  }, results)

  await step('alter-config', async () => {
    await d.setTopicConfig(topic, sc.config_key, sc.config_value)
    await poll(async () => (await d.topicConfig(topic, sc.config_key)) === sc.config_value)
  }, results)
}

async function main () {
  if (process.argv.length !== 3) {
    process.stderr.write('usage: node scenario.js BOOTSTRAP < scenario.json\n')
    return 2
  }
  const chunks = []
  for await (const c of process.stdin) chunks.push(c)
  const sc = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  const d = new Driver(process.argv[2])
  await d.connect()
  try {
    await run(d, sc)
  } finally {
    await d.close()
  }
  return 0
}

main().then((code) => { process.exitCode = code }, (e) => {
  process.stderr.write(`scenario.js: ${e.stack || e}\n`)
  process.exitCode = 1
})
