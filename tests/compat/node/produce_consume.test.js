'use strict'
// kafkajs 2.2.4: scenarios 1 (produce/consume, from beginning and from an offset), 3 (1 MB records),
// 4 (16 partitions, keyed placement), 2 (gzip, the only codec kafkajs has built in, cross-client).
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const { CompressionTypes } = require('kafkajs')
const { startBroker, kafkaFor, kafkajsConsume, kcat, pythonConfluentRead, uniqueName } = require('./helpers')

let broker, kafka, admin

before(async () => {
  broker = await startBroker({ name: 'kjs-pc' })
  kafka = kafkaFor(broker)
  admin = kafka.admin()
  await admin.connect()
})

after(async () => {
  if (admin) await admin.disconnect()
  if (broker) { await broker.stop(); broker.cleanup() }
})

const N = 20
function records (prefix) {
  return Array.from({ length: N }, (_, i) => ({
    key: i === 3 ? null : `${prefix}-key-${i}`,
    value: i === 5 ? '' : `${prefix}-value-${i}-`.repeat(1 + (i % 4)),
    headers: i % 2 === 0 ? { h1: `hv-${i}`, h2: Buffer.from([0, 1, 255]) } : undefined
  }))
}

async function createTopic (topic, numPartitions) {
  const created = await admin.createTopics({ topics: [{ topic, numPartitions }], waitForLeaders: true })
  assert.equal(created, true)
}

function checkRecords (got, recs, startOffset = 0) {
  assert.deepEqual(got.map((m) => m.offset), recs.map((_, i) => i + startOffset))
  got.forEach((m, i) => {
    const r = recs[i]
    assert.equal(m.key === null ? null : m.key.toString(), r.key)
    assert.equal(m.value.toString(), r.value)
    if (r.headers) {
      assert.equal(m.headers.h1.toString(), r.headers.h1)
      assert.deepEqual([...m.headers.h2], [0, 1, 255])
    } else {
      assert.deepEqual(Object.keys(m.headers || {}), [])
    }
  })
}

test('kafkajs produce + consume from beginning and from a sought offset', async () => {
  const topic = uniqueName('kjs-pc')
  await createTopic(topic, 1)
  const producer = kafka.producer()
  await producer.connect()
  const recs = records('kjs')
  const meta = await producer.send({ topic, messages: recs.map((r) => ({ ...r, partition: 0 })) })
  await producer.disconnect()
  assert.deepEqual(meta.map((m) => [m.partition, m.errorCode, m.baseOffset]), [[0, 0, '0']])

  checkRecords(await kafkajsConsume(kafka, topic, N), recs)

  // from a given offset: a fresh group starts at the end (nothing to deliver), then seek(7)
  const got = await kafkajsConsume(kafka, topic, N - 7, { fromBeginning: false, seek: [{ partition: 0, offset: 7 }] })
  checkRecords(got, recs.slice(7), 7)

  // offsets reported by ListOffsets
  const offs = await admin.fetchTopicOffsets(topic)
  assert.deepEqual(offs.map((o) => [o.partition, o.low, o.high]), [[0, '0', String(N)]])

  // librdkafka reads what kafkajs wrote, headers included
  const py = pythonConfluentRead(broker.bootstrap, topic, 0, 0, N)
  assert.deepEqual(py.map((m) => Buffer.from(m.value, 'hex').toString()), recs.map((r) => r.value))
  assert.deepEqual(py[0].headers.map(([k, v]) => [k, Buffer.from(v, 'hex').toString()]), [['h1', 'hv-0'], ['h2', '\u0000\u0001\ufffd']])
})

test('kafkajs reads kcat-produced records (keys, headers)', async () => {
  const topic = uniqueName('kjs-fromkcat')
  await createTopic(topic, 1)
  const lines = Array.from({ length: N }, (_, i) => `k${i}:v${i}`)
  kcat(['-b', broker.bootstrap, '-P', '-t', topic, '-p', '0', '-K', ':', '-H', 'a=b'], lines.join('\n') + '\n')
  const got = await kafkajsConsume(kafka, topic, N)
  assert.deepEqual(got.map((m) => [m.offset, m.key.toString(), m.value.toString(), m.headers.a.toString()]),
    lines.map((_, i) => [i, `k${i}`, `v${i}`, 'b']))
})

test('kafkajs gzip: produced by kafkajs, read by kafkajs, kcat and librdkafka; kcat gzip read by kafkajs', async () => {
  const topic = uniqueName('kjs-gzip')
  await createTopic(topic, 1)
  const producer = kafka.producer()
  await producer.connect()
  const vals = Array.from({ length: 50 }, (_, i) => `gzip-${i}-`.repeat(5 + (i % 3)))
  await producer.send({ topic, compression: CompressionTypes.GZIP, messages: vals.map((v) => ({ value: v, partition: 0 })) })
  await producer.disconnect()
  const got = await kafkajsConsume(kafka, topic, 50)
  assert.deepEqual(got.map((m) => m.value.toString()), vals)
  const out = kcat(['-b', broker.bootstrap, '-C', '-t', topic, '-p', '0', '-o', 'beginning', '-c', '50', '-e', '-J'])
  const kc = out.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l))
  assert.deepEqual(kc.map((o) => [o.offset, o.payload]), vals.map((v, i) => [i, v]))
  const py = pythonConfluentRead(broker.bootstrap, topic, 0, 10, 40)
  assert.deepEqual(py.map((m) => m.offset), Array.from({ length: 40 }, (_, i) => i + 10))

  // stored batch really is gzip (attributes & 7 == 1) -- raw Fetch v4 through the python helper
  const r = spawnSync('/usr/bin/python3', ['-c',
    'import sys; sys.path.insert(0, sys.argv[3]); import kproto; e,h,rec=kproto.fetch_v4(sys.argv[1], sys.argv[2], 0, 0); ' +
    'print(sorted({b["attributes"] & 7 for b in kproto.batch_headers(rec)}))',
    broker.bootstrap, topic, require('node:path').join(__dirname, '..')])
  assert.equal(r.status, 0, String(r.stderr))
  assert.equal(r.stdout.toString().trim(), '[1]')

  const topic2 = uniqueName('kjs-gzip-kcat')
  await createTopic(topic2, 1)
  kcat(['-b', broker.bootstrap, '-P', '-t', topic2, '-p', '0', '-z', 'gzip'], vals.join('\n') + '\n')
  const got2 = await kafkajsConsume(kafka, topic2, 50)
  assert.deepEqual(got2.map((m) => m.value.toString()), vals)
})

test('kafkajs 1,000,000-byte records', async () => {
  const topic = uniqueName('kjs-big')
  await createTopic(topic, 1)
  const vals = [0, 1, 2].map((i) => Buffer.alloc(1000000, 65 + i))
  vals.forEach((v, i) => { v.write(`record-${i}`, 0) })
  const producer = kafka.producer()
  await producer.connect()
  for (const v of vals) await producer.send({ topic, messages: [{ value: v, partition: 0 }] })
  await producer.disconnect()
  const got = await kafkajsConsume(kafka, topic, 3)
  assert.deepEqual(got.map((m) => m.offset), [0, 1, 2])
  got.forEach((m, i) => assert.ok(m.value.equals(vals[i]), `record ${i} differs`))
})

test('kafkajs 16 partitions: keyed records land on murmur2 partitions, all consumed', async () => {
  const topic = uniqueName('kjs-many')
  await createTopic(topic, 16)
  const keys = Array.from({ length: 160 }, (_, i) => `kjs-${i}`)
  // independent murmur2 (kafka-python's Java-compatible implementation)
  const r = spawnSync('/usr/bin/python3', ['-c',
    'import sys, json; from kafka.partitioner.default import murmur2; ' +
    'print(json.dumps([(murmur2(k.encode()) & 0x7fffffff) % 16 for k in json.loads(sys.argv[1])]))', JSON.stringify(keys)])
  assert.equal(r.status, 0, String(r.stderr))
  const expected = JSON.parse(r.stdout.toString())
  const producer = kafka.producer()
  await producer.connect()
  const meta = await producer.send({ topic, messages: keys.map((k) => ({ key: k, value: `v-${k}` })) })
  await producer.disconnect()
  assert.equal(meta.length, new Set(expected).size)
  const got = await kafkajsConsume(kafka, topic, keys.length)
  assert.equal(got.length, keys.length)
  for (const m of got) assert.equal(m.partition, expected[keys.indexOf(m.key.toString())], `key ${m.key}`)
  const perPart = {}
  for (const m of got) (perPart[m.partition] = perPart[m.partition] || []).push(m.offset)
  for (const [p, offs] of Object.entries(perPart)) {
    assert.deepEqual(offs, offs.map((_, i) => i), `partition ${p} offsets`)
  }
})

test('kafkajs admin.setOffsets + fetchOffsets, consumer resumes there (uses DescribeGroups)', async () => {
  const topic = uniqueName('kjs-setoff')
  await createTopic(topic, 1)
  const producer = kafka.producer()
  await producer.connect()
  const recs = records('so')
  await producer.send({ topic, messages: recs.map((r) => ({ ...r, partition: 0 })) })
  await producer.disconnect()
  const groupId = uniqueName('kjs-from7')
  await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '7' }] })
  const fetched = await admin.fetchOffsets({ groupId, topics: [topic] })
  assert.deepEqual(fetched[0].partitions.map((p) => [p.partition, p.offset]), [[0, '7']])
  checkRecords(await kafkajsConsume(kafka, topic, N - 7, { groupId }), recs.slice(7), 7)
})
