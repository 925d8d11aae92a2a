'use strict'
// kafkajs 2.2.4 admin (scenario 7): createTopics with the -1/-1 defaults, list, delete, errors.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { startBroker, kafkaFor, uniqueName, waitUntil } = require('./helpers')

let broker, admin

before(async () => {
  // default partition count 3 so that numPartitions -1 ("broker default") is observable
  broker = await startBroker({ name: 'kjs-admin', sets: { 'broker.num_partitions': '3' } })
  admin = kafkaFor(broker).admin()
  await admin.connect()
})

after(async () => {
  if (admin) await admin.disconnect()
  if (broker) { await broker.stop(); broker.cleanup() }
})

test('createTopics with default numPartitions (-1) uses the broker default', async () => {
  const topic = uniqueName('kjs-adm-def')
  assert.equal(await admin.createTopics({ topics: [{ topic }] }), true)
  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  assert.deepEqual(md.topics[0].partitions.map((p) => p.partitionId).sort(), [0, 1, 2])
  assert.ok(md.topics[0].partitions.every((p) => p.leader >= 0))
})

test('create, list, delete; existing -> TOPIC_ALREADY_EXISTS', async () => {
  const t1 = uniqueName('kjs-adm-a')
  const t2 = uniqueName('kjs-adm-b')
  assert.equal(await admin.createTopics({ topics: [{ topic: t1, numPartitions: 5 }, { topic: t2, numPartitions: 1 }] }), true)
  const listed = await admin.listTopics()
  assert.ok(listed.includes(t1) && listed.includes(t2), `listTopics: ${listed}`)
  const md = await admin.fetchTopicMetadata({ topics: [t1] })
  assert.equal(md.topics[0].partitions.length, 5)
  // kafkajs resolves false when every error is TOPIC_ALREADY_EXISTS
  assert.equal(await admin.createTopics({ topics: [{ topic: t1, numPartitions: 5 }] }), false)
  await admin.deleteTopics({ topics: [t2] })
  await waitUntil(async () => !(await admin.listTopics()).includes(t2), { timeoutMs: 10000, msg: 'deleted topic gone' })
  assert.ok((await admin.listTopics()).includes(t1))
})

for (const [label, name] of [['space', 'bad topic'], ['dotdot', '..'], ['too-long', 'x'.repeat(250)], ['slash', 'a/b']]) {
  test(`invalid topic name rejected: ${label}`, async () => {
    await assert.rejects(admin.createTopics({ topics: [{ topic: name, numPartitions: 1 }] }), (e) => {
      const types = (e.errors || [e]).map((x) => x.type)
      assert.deepEqual(types, ['INVALID_TOPIC_EXCEPTION'], `got ${e}`)
      return true
    })
  })
}

test('replicationFactor 3 on a single broker -> INVALID_REPLICATION_FACTOR', async () => {
  await assert.rejects(admin.createTopics({ topics: [{ topic: uniqueName('kjs-rf'), numPartitions: 1, replicationFactor: 3 }] }),
    (e) => { assert.deepEqual((e.errors || [e]).map((x) => x.type), ['INVALID_REPLICATION_FACTOR']); return true })
})
