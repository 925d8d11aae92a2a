'use strict'
// kafkajs idempotent producer (scenario 8): idempotent: true, maxInFlightRequests: 1 -> exactly once, in order.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { startBroker, kafkaFor, kafkajsConsume, uniqueName } = require('./helpers')

let broker, kafka

before(async () => {
  broker = await startBroker({ name: 'kjs-idem' })
  kafka = kafkaFor(broker)
})

after(async () => {
  if (broker) { await broker.stop(); broker.cleanup() }
})

test('kafkajs idempotent producer: records exactly once, in order', async () => {
  const topic = uniqueName('kjs-idem')
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] })
  await admin.disconnect()
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const sent = { 0: [], 1: [] }
  for (let b = 0; b < 30; b++) {
    const messages = Array.from({ length: 10 }, (_, i) => ({ partition: (b + i) % 2, value: `idem-${b}-${i}` }))
    const meta = await producer.send({ topic, acks: -1, messages })
    for (const m of meta) assert.equal(m.errorCode, 0)
    for (const m of messages) sent[m.partition].push(m.value)
  }
  await producer.disconnect()
  const got = await kafkajsConsume(kafka, topic, 300)
  assert.equal(got.length, 300)
  for (const p of [0, 1]) {
    const mine = got.filter((m) => m.partition === p)
    assert.deepEqual(mine.map((m) => m.value.toString()), sent[p], `partition ${p} values`)
    assert.deepEqual(mine.map((m) => m.offset), sent[p].map((_, i) => i), `partition ${p} offsets`)
  }
  const offs = await (async () => { const a = kafka.admin(); await a.connect(); try { return await a.fetchTopicOffsets(topic) } finally { await a.disconnect() } })()
  assert.deepEqual(offs.map((o) => o.high).sort(), ['150', '150'])
})
