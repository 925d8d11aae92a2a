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

test('listGroups and describeGroups show a running consumer group', async () => {
  const topic = uniqueName('kjs-lg')
  const groupId = uniqueName('kjs-lg-group')
  const kafka = kafkaFor(broker)
  const producer = kafka.producer()
  await producer.connect()
  await producer.send({ topic, messages: [{ value: 'x' }] })
  await producer.disconnect()
  const consumer = kafka.consumer({ groupId })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  let got = 0
  await consumer.run({ eachMessage: async () => { got++ } })
  try {
    await waitUntil(async () => got === 1, { timeoutMs: 20000, msg: 'consumed' })
    const { groups } = await admin.listGroups()
    assert.deepEqual(groups.filter((g) => g.groupId === groupId), [{ groupId, protocolType: 'consumer' }])
  } finally {
    await consumer.disconnect()
  }
})

test('describeConfigs for a topic and the broker', async () => {
  const topic = uniqueName('kjs-cfg')
  assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] }), true)
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: 2 /* TOPIC */, name: topic, configNames: ['retention.ms', 'cleanup.policy', 'no.such.config'] },
      { type: 4 /* BROKER */, name: '0' }]
  })
  const [t, b] = resources
  assert.equal(t.errorCode, 0)
  assert.deepEqual(t.configEntries.map((e) => [e.configName, e.configValue]).sort(),
    [['cleanup.policy', 'delete'], ['retention.ms', '604800000']])
  assert.equal(b.errorCode, 0)
  const nparts = b.configEntries.find((e) => e.configName === 'num.partitions')
  assert.equal(nparts.configValue, '3') // this broker runs with broker.num_partitions=3
  assert.equal(nparts.isDefault, false)
})

test('deleteGroups removes a memberless group and its offsets; unknown -> GROUP_ID_NOT_FOUND', async () => {
  const topic = uniqueName('kjs-dg')
  const groupId = uniqueName('kjs-dg-group')
  assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] }), true)
  await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '0' }] })
  assert.deepEqual((await admin.fetchOffsets({ groupId, topics: [topic] }))[0].partitions.map((p) => p.offset), ['0'])
  const res = await admin.deleteGroups([groupId])
  assert.deepEqual(res.map((r) => [r.groupId, r.errorCode]), [[groupId, 0]])
  assert.deepEqual((await admin.fetchOffsets({ groupId, topics: [topic] }))[0].partitions.map((p) => p.offset), ['-1'])
  await assert.rejects(admin.deleteGroups([uniqueName('kjs-dg-none')]), (e) => {
    assert.deepEqual((e.groups || []).map((g) => g.error && g.error.type), ['GROUP_ID_NOT_FOUND'], `got ${e}`)
    return true
  })
})

test('createPartitions grows a topic; fewer -> INVALID_PARTITIONS', async () => {
  const topic = uniqueName('kjs-cp')
  assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] }), true)
  await admin.createPartitions({ topicPartitions: [{ topic, count: 4 }] })
  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  assert.deepEqual(md.topics[0].partitions.map((p) => p.partitionId).sort(), [0, 1, 2, 3])
  await assert.rejects(admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] }), (e) => {
    assert.match(String(e.type || (e.errors && e.errors[0].type) || e), /INVALID_PARTITIONS/)
    return true
  })
})

test('alterConfigs sets a topic config, describeConfigs shows it as the topic\'s own', async () => {
  const topic = uniqueName('kjs-ac')
  assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] }), true)
  await admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: topic, configEntries: [{ name: 'retention.ms', value: '120000' }] }] })
  const { resources } = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: topic, configNames: ['retention.ms'] }] })
  const e = resources[0].configEntries[0]
  assert.deepEqual([e.configName, e.configValue, e.isDefault, e.readOnly], ['retention.ms', '120000', false, false])
  await assert.rejects(admin.alterConfigs({ resources: [{ type: 2, name: topic, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] }),
    (err) => { assert.match(String(err.type || err), /INVALID_CONFIG/); return true })
})
