'use strict'
// kafkajs over TLS (ssl: { ca }) with SASL PLAIN on top, against a self-signed certificate made by openssl.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { startBroker, kafkaFor, kafkajsConsume, uniqueName } = require('./helpers')

let broker, dir, cert

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-tls-'))
  cert = path.join(dir, 'cert.pem')
  const key = path.join(dir, 'key.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore', timeout: 60000 })
  broker = await startBroker({
    name: 'kjs-tls',
    sets: {
      'broker.tls_cert_file': cert,
      'broker.tls_key_file': key,
      'broker.sasl_mechanisms': 'PLAIN',
      'broker.sasl_users': 'alice:alice-secret'
    }
  })
})

after(async () => {
  if (broker) { await broker.stop(); broker.cleanup() }
  fs.rmSync(dir, { recursive: true, force: true })
})

test('kafkajs TLS + SASL PLAIN: produce and consume', async () => {
  const kafka = kafkaFor(broker, {
    ssl: { ca: [fs.readFileSync(cert, 'utf8')] },
    sasl: { mechanism: 'plain', username: 'alice', password: 'alice-secret' }
  })
  const topic = uniqueName('kjs-tls')
  const producer = kafka.producer()
  await producer.connect()
  const value = 'x'.repeat(200000)
  await producer.send({ topic, acks: -1, messages: [{ value }, { value: 'small' }] })
  await producer.disconnect()
  const got = await kafkajsConsume(kafka, topic, 2)
  assert.deepEqual(got.map(m => m.value.length).sort((a, b) => a - b), [5, 200000])
})
