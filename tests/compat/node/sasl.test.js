'use strict'
// kafkajs SASL: PLAIN and SCRAM-SHA-256 (SaslHandshake v1 + SaslAuthenticate v1), and a wrong password refused.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { startBroker, kafkaFor, kafkajsConsume, uniqueName } = require('./helpers')

let broker

before(async () => {
  broker = await startBroker({
    name: 'kjs-sasl',
    sets: { 'broker.sasl_mechanisms': 'PLAIN,SCRAM-SHA-256', 'broker.sasl_users': 'alice:alice-secret' }
  })
})

after(async () => {
  if (broker) { await broker.stop(); broker.cleanup() }
})

for (const mechanism of ['plain', 'scram-sha-256']) {
  test(`kafkajs SASL ${mechanism}: produce and consume`, async () => {
    const kafka = kafkaFor(broker, { sasl: { mechanism, username: 'alice', password: 'alice-secret' } })
    const topic = uniqueName('kjs-sasl')
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({ topic, acks: -1, messages: [{ value: 'a' }, { value: 'b' }, { value: 'c' }] })
    await producer.disconnect()
    const got = await kafkajsConsume(kafka, topic, 3)
    assert.deepEqual(got.map(m => m.value.toString()).sort(), ['a', 'b', 'c'])
  })

  test(`kafkajs SASL ${mechanism}: a wrong password is refused`, async () => {
    const kafka = kafkaFor(broker, {
      sasl: { mechanism, username: 'alice', password: 'wrong' },
      retry: { retries: 0 }
    })
    const admin = kafka.admin()
    await assert.rejects(admin.connect(), /SASL|authentication|Authentication/)
  })
}
