'use strict'
// Shared harness for the kafkajs compatibility tests (node --test tests/compat/node/).
// Binary under test: $SLUICE_BIN (default <repo>/build/sluice).
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const crypto = require('node:crypto')

const REPO = path.resolve(__dirname, '..', '..', '..')
const SLUICE_BIN = process.env.SLUICE_BIN || path.join(REPO, 'build', 'sluice')
const READY_TIMEOUT_MS = Number(process.env.SLUICE_READY_TIMEOUT || 20) * 1000
const STOP_TIMEOUT_MS = Number(process.env.SLUICE_STOP_TIMEOUT || 30) * 1000

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Poll cond() (sync or async) until truthy; throw after timeoutMs.
async function waitUntil (cond, { timeoutMs = 20000, intervalMs = 20, msg = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs
  let lastErr
  for (;;) {
    try {
      const v = await cond()
      if (v) return v
    } catch (e) { lastErr = e }
    if (Date.now() >= deadline) {
      const m = typeof msg === 'function' ? msg() : msg
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${m}${lastErr ? ` (last error: ${lastErr})` : ''}`)
    }
    await sleep(intervalMs)
  }
}

const uniqueName = (prefix) => `${prefix}-${crypto.randomBytes(6).toString('hex')}`

class Broker {
  constructor ({ name = 'broker', sets = {} } = {}) {
    this.name = name
    this.workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-kafkajs-'))
    this.dataDir = path.join(this.workdir, 'data')
    fs.mkdirSync(this.dataDir)
    this.sets = { 'broker.group_initial_rebalance_delay_ms': '0', 'broker.auto_create_topics': 'true', ...sets }
    this.logPath = path.join(this.workdir, `${name}.stderr.log`)
    this.proc = null
    this.port = null
    this.starts = 0
  }

  get bootstrap () { return `127.0.0.1:${this.port}` }

  async start (port = 0) {
    if (this.proc) throw new Error('broker already running')
    if (!fs.existsSync(SLUICE_BIN)) throw new Error(`sluice binary not found at ${SLUICE_BIN} (set SLUICE_BIN)`)
    this.starts += 1
    const ready = path.join(this.workdir, `${this.name}.ready.${this.starts}`)
    fs.rmSync(ready, { force: true })
    const args = ['broker', '--listen', `127.0.0.1:${port}`, '--data-dir', this.dataDir, '--ready-file', ready]
    for (const [k, v] of Object.entries(this.sets)) args.push('--set', `${k}=${v}`)
    const logFd = fs.openSync(this.logPath, 'a')
    fs.writeSync(logFd, `\n===== start #${this.starts}: ${SLUICE_BIN} ${args.join(' ')}\n`)
    const proc = spawn(SLUICE_BIN, args, { stdio: ['ignore', logFd, logFd], cwd: this.workdir })
    fs.closeSync(logFd)
    let exited = null
    proc.on('exit', (code, signal) => { exited = { code, signal } })
    this.proc = proc
    this._exit = () => exited
    const deadline = Date.now() + READY_TIMEOUT_MS
    let content = ''
    for (;;) {
      if (fs.existsSync(ready)) {
        content = fs.readFileSync(ready, 'utf8')
        if (content.endsWith('\n')) break
      }
      if (exited) {
        this.proc = null
        throw new Error(`broker exited (${JSON.stringify(exited)}) before ready\n${this.logTail()}`)
      }
      if (Date.now() >= deadline) throw new Error(`broker not ready after ${READY_TIMEOUT_MS} ms\n${this.logTail()}`)
      await sleep(20)
    }
    const m = /^127\.0\.0\.1:(\d+)\n$/.exec(content)
    if (!m) throw new Error(`bad ready file content ${JSON.stringify(content)}`)
    this.port = Number(m[1])
    return this
  }

  alive () { return this.proc !== null && this._exit() === null }

  assertAlive () {
    if (!this.alive()) throw new Error(`broker died: ${JSON.stringify(this._exit && this._exit())}\n${this.logTail()}`)
  }

  async _waitExit (timeoutMs) {
    const deadline = Date.now() + timeoutMs
    while (this._exit() === null && Date.now() < deadline) await sleep(20)
    return this._exit()
  }

  // SIGTERM; resolves to the exit code; throws unless it is 0.
  async stop ({ timeoutMs = STOP_TIMEOUT_MS } = {}) {
    if (!this.proc) return
    if (this._exit() !== null) {
      const e = this._exit(); this.proc = null
      throw new Error(`broker had already exited ${JSON.stringify(e)}\n${this.logTail()}`)
    }
    this.proc.kill('SIGTERM')
    const e = await this._waitExit(timeoutMs)
    const proc = this.proc
    this.proc = null
    if (e === null) {
      proc.kill('SIGKILL')
      throw new Error(`broker did not exit within ${timeoutMs} ms of SIGTERM\n${this.logTail()}`)
    }
    if (e.code !== 0) throw new Error(`broker exit ${JSON.stringify(e)} after SIGTERM (expected 0)\n${this.logTail()}`)
    return 0
  }

  async kill9 () {
    this.proc.kill('SIGKILL')
    await this._waitExit(10000)
    this.proc = null
  }

  async restart () {
    const old = this.port
    await this.stop()
    try { return await this.start(old) } catch (e) { if (this.proc) throw e; return this.start(0) }
  }

  logTail (lines = 80) {
    try {
      const all = fs.readFileSync(this.logPath, 'utf8').split('\n')
      return `----- ${this.logPath} (last ${lines} lines) -----\n${all.slice(-lines).join('\n')}`
    } catch (_) { return '(no broker log)' }
  }

  cleanup () {
    if (process.env.SLUICE_KEEP_TMP) return
    fs.rmSync(this.workdir, { recursive: true, force: true })
  }
}

// Start a broker for one test file; returns { broker, teardown }. teardown asserts exit code 0.
async function startBroker (opts) {
  const broker = new Broker(opts)
  await broker.start()
  return broker
}

function kafkaFor (broker, extra = {}) {
  const { Kafka, logLevel } = require('kafkajs')
  return new Kafka({
    clientId: 'sluice-compat',
    brokers: [broker.bootstrap],
    logLevel: process.env.KAFKAJS_DEBUG ? logLevel.DEBUG : logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 2000 },
    ...extra
  })
}

// Consume `count` messages through a kafkajs group consumer; returns [{partition, offset, key, value, headers}]
async function kafkajsConsume (kafka, topic, count, { fromBeginning = true, seek = null, timeoutMs = 30000, groupId } = {}) {
  const consumer = kafka.consumer({ groupId: groupId || uniqueName('kjs-read'), maxWaitTimeInMs: 200 })
  const out = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        out.push({ partition, offset: Number(message.offset), key: message.key, value: message.value, headers: message.headers })
      }
    })
    if (seek) for (const s of seek) consumer.seek({ topic, partition: s.partition, offset: String(s.offset) })
    await waitUntil(() => out.length >= count, { timeoutMs, intervalMs: 50, msg: () => `${count} messages from ${topic} (have ${out.length})` })
  } finally {
    await consumer.disconnect()
  }
  return out
}

function kcat (args, input) {
  const r = spawnSync('kcat', args, { input, maxBuffer: 64 * 1024 * 1024, timeout: 60000 })
  if (r.status !== 0) throw new Error(`kcat ${args.join(' ')} exited ${r.status}: ${r.stderr}`)
  return r.stdout
}

// librdkafka (python confluent-kafka) reader via Debian's python, for cross-client checks
function pythonConfluentRead (bootstrap, topic, partition, offset, count) {
  const script = `
import sys, json
from confluent_kafka import Consumer, TopicPartition
c = Consumer({'bootstrap.servers': sys.argv[1], 'group.id': 'kjs-x', 'enable.auto.commit': False})
c.assign([TopicPartition(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))])
out = []
import time
deadline = time.monotonic() + 30
while len(out) < int(sys.argv[5]) and time.monotonic() < deadline:
    m = c.poll(0.2)
    if m is None: continue
    if m.error(): raise SystemExit(str(m.error()))
    out.append({'offset': m.offset(), 'key': m.key().hex() if m.key() is not None else None,
                'value': m.value().hex() if m.value() is not None else None,
                'headers': [[k, v.hex()] for k, v in (m.headers() or [])]})
c.close()
print(json.dumps(out))
`
  const r = spawnSync('/usr/bin/python3', ['-c', script, bootstrap, topic, String(partition), String(offset), String(count)],
    { maxBuffer: 64 * 1024 * 1024, timeout: 60000 })
  if (r.status !== 0) throw new Error(`python reader failed: ${r.stderr}`)
  return JSON.parse(r.stdout.toString())
}

module.exports = { Broker, startBroker, kafkaFor, kafkajsConsume, kcat, pythonConfluentRead, waitUntil, uniqueName, sleep, SLUICE_BIN }
