'use strict'
// One kafkajs consumer-group member in its own process (so a test can SIGKILL it).
// usage: node group_member.js BOOTSTRAP TOPIC GROUP NAME
// JSON lines on stdout: {ev: assign|rebalancing|rec|commit_fail|ready|closed, t, member, ...}
// SIGTERM => consumer.disconnect() (LeaveGroup) and exit 0. Offsets committed explicitly after each batch.
const { Kafka, logLevel } = require('kafkajs')
const [bootstrap, topic, groupId, name] = process.argv.slice(2)
const emit = (ev, extra = {}) => process.stdout.write(JSON.stringify({ ev, t: Date.now() / 1000, member: name, ...extra }) + '\n')

const kafka = new Kafka({ clientId: name, brokers: [bootstrap], logLevel: logLevel.NOTHING,
  retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 } })
const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500, rebalanceTimeout: 20000,
  maxWaitTimeInMs: 100 })
const { GROUP_JOIN, REBALANCING, CRASH } = consumer.events
consumer.on(GROUP_JOIN, (e) => emit('assign', { parts: (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b) }))
consumer.on(REBALANCING, () => emit('rebalancing'))
consumer.on(CRASH, (e) => emit('crash', { err: String(e.payload.error) }))

let stopping = false
process.on('SIGTERM', async () => {
  if (stopping) return
  stopping = true
  try { await consumer.disconnect() } finally { emit('closed'); process.exit(0) }
})

async function main () {
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      if (batch.messages.length === 0) return
      for (const m of batch.messages) {
        emit('rec', { p: batch.partition, o: Number(m.offset), v: m.value.toString() })
        resolveOffset(m.offset)
      }
      const next = String(Number(batch.messages[batch.messages.length - 1].offset) + 1)
      try {
        await consumer.commitOffsets([{ topic, partition: batch.partition, offset: next }])
      } catch (e) {
        emit('commit_fail', { err: String(e) })
      }
      await heartbeat()
    }
  })
  emit('ready')
}
main().catch((e) => { emit('fatal', { err: String(e && e.stack) }); process.exit(2) })
