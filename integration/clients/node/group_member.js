#!/usr/bin/env node
// One kafkajs consumer-group member for Strom's membership proof (integration/groupmembers_test.go).
//
// Usage: node group_member.js BOOTSTRAP TOPIC GROUP   (after `npm ci` in this folder)
//
// Prints "ASSIGN p,p,.." (or "ASSIGN -") on each join and "REC partition offset" for each record once
// its offset is committed (autoCommit off, awaited commitOffsets). SIGTERM disconnects, leaving the group.
'use strict'

const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs')

// The test produces with franz-go, which compresses with snappy by default.
CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy')

const [bootstrap, topic, group] = process.argv.slice(2)

async function main () {
  const kafka = new Kafka({ clientId: 'strom-member', brokers: bootstrap.split(','), logLevel: logLevel.ERROR })
  // maxWaitTimeInMs: a member notices a rebalance only between fetches, which long-poll 5 s by default.
  const consumer = kafka.consumer({
    groupId: group, sessionTimeout: 6000, heartbeatInterval: 500, rebalanceTimeout: 10000, maxWaitTimeInMs: 500
  })
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const parts = [...(e.payload.memberAssignment[topic] || [])].sort((a, b) => a - b)
    process.stdout.write('ASSIGN ' + (parts.length ? parts.join(',') : '-') + '\n')
  })
  let stopping = false
  process.on('SIGTERM', async () => {
    if (stopping) return
    stopping = true
    await consumer.disconnect()
    process.exit(0)
  })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }])
      process.stdout.write(`REC ${partition} ${message.offset}\n`)
    }
  })
}

main().catch((err) => {
  process.stderr.write(`group_member: ${err.stack || err}\n`)
  process.exit(1)
})
