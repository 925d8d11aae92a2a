'use strict'
// kafkajs consumer group with three members (scenario 5): all partitions assigned; a clean leave
// (disconnect) rebalances; a SIGKILLed member is noticed after sessionTimeout 6000; no record lost;
// a record is delivered to a second member only if the first one could not commit it (killed or
// commit failed because a rebalance started), i.e. never twice within one generation.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const path = require('node:path')
const readline = require('node:readline')
const { startBroker, kafkaFor, uniqueName, waitUntil } = require('./helpers')

const NPART = 6
const PER_PHASE = 60
let broker, kafka

before(async () => { broker = await startBroker({ name: 'kjs-grp' }); kafka = kafkaFor(broker) })
after(async () => { if (broker) { await broker.stop(); broker.cleanup() } })

class Member {
  constructor (topic, groupId, name, events) {
    this.name = name
    this.current = new Set()
    this.stderr = []
    this.exit = null
    this.killed = false
    this.proc = spawn(process.execPath, [path.join(__dirname, 'group_member.js'), broker.bootstrap, topic, groupId, name],
      { stdio: ['ignore', 'pipe', 'pipe'] })
    this.proc.on('exit', (code, signal) => { this.exit = { code, signal } })
    readline.createInterface({ input: this.proc.stdout }).on('line', (line) => {
      let ev
      try { ev = JSON.parse(line) } catch (_) { return }
      if (ev.ev === 'assign') this.current = new Set(ev.parts)
      else if (ev.ev === 'rebalancing') this.current = new Set()
      events.push(ev)
    })
    readline.createInterface({ input: this.proc.stderr }).on('line', (l) => this.stderr.push(l))
  }

  async stop () {
    this.proc.kill('SIGTERM')
    await waitUntil(() => this.exit, { timeoutMs: 30000, msg: `member ${this.name} exit` })
    assert.equal(this.exit.code, 0, `member ${this.name} exit ${JSON.stringify(this.exit)}: ${this.stderr.slice(-20).join('\n')}`)
    this.current = new Set()
  }

  async kill9 () {
    this.killed = true
    this.proc.kill('SIGKILL')
    await waitUntil(() => this.exit, { timeoutMs: 10000, msg: 'killed member exit' })
    this.current = new Set()
  }

  cleanup () { if (!this.exit) this.proc.kill('SIGKILL') }
}

function balanced (members) {
  const sets = members.map((m) => m.current)
  if (sets.some((s) => s.size === 0)) return false
  const union = new Set(sets.flatMap((s) => [...s]))
  return union.size === NPART && sets.reduce((a, s) => a + s.size, 0) === NPART
}

async function producePhase (topic, phase) {
  const producer = kafka.producer()
  await producer.connect()
  const vals = Array.from({ length: PER_PHASE }, (_, i) => `ph${phase}-${String(i).padStart(3, '0')}`)
  await producer.send({ topic, messages: vals.map((v, i) => ({ value: v, partition: i % NPART })) })
  await producer.disconnect()
  return vals
}

test('kafkajs group: 3 members, clean leave, SIGKILLed member', { timeout: 180000 }, async () => {
  const topic = uniqueName('kjs-grp')
  const groupId = uniqueName('kjs-grp')
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: NPART }] })
  await admin.disconnect()
  const events = []
  const produced = new Set(await producePhase(topic, 1))
  const members = [0, 1, 2].map((i) => new Member(topic, groupId, `kjs-m${i}`, events))
  const consumed = () => new Set(events.filter((e) => e.ev === 'rec').map((e) => e.v))
  const allConsumed = () => [...produced].every((v) => consumed().has(v))
  const diag = () => `members ${JSON.stringify(members.map((m) => [m.name, [...m.current], m.exit]))} ` +
    `last events ${JSON.stringify(events.slice(-10))} stderr ${members.map((m) => m.stderr.slice(-5).join('|'))}`
  try {
    await waitUntil(() => balanced(members), { timeoutMs: 60000, intervalMs: 100, msg: () => '3 members balanced ' + diag() })
    await waitUntil(allConsumed, { timeoutMs: 30000, intervalMs: 100, msg: () => 'phase 1 consumed ' + diag() })
    assert.deepEqual(members.map((m) => m.current.size), [2, 2, 2])

    await members[0].stop()
    await waitUntil(() => balanced(members.slice(1)), { timeoutMs: 40000, intervalMs: 100, msg: () => 'rebalance after leave ' + diag() })
    for (const v of await producePhase(topic, 2)) produced.add(v)
    await waitUntil(allConsumed, { timeoutMs: 30000, intervalMs: 100, msg: () => 'phase 2 consumed ' + diag() })

    const tKill = Date.now()
    await members[1].kill9()
    for (const v of await producePhase(topic, 3)) produced.add(v)
    await waitUntil(() => balanced(members.slice(2)), { timeoutMs: 45000, intervalMs: 100, msg: () => 'rebalance after SIGKILL ' + diag() })
    assert.ok(Date.now() - tKill >= 3000, 'reassigned before the killed member could have timed out')
    await waitUntil(allConsumed, { timeoutMs: 30000, intervalMs: 100, msg: () => 'phase 3 consumed ' + diag() })
    await members[2].stop()
  } finally {
    members.forEach((m) => m.cleanup())
  }
  // duplicates only when the first deliverer could not commit
  const failed = new Set(events.filter((e) => e.ev === 'commit_fail').map((e) => e.member))
  const first = new Map()
  for (const e of events.filter((x) => x.ev === 'rec').sort((a, b) => a.t - b.t)) {
    const k = `${e.p}:${e.o}`
    const prev = first.get(k)
    if (!prev) { first.set(k, e); continue }
    assert.equal(prev.v, e.v)
    assert.ok(prev.member === 'kjs-m1' || failed.has(prev.member),
      `record ${k} delivered to ${prev.member} and then ${e.member} though ${prev.member} committed it`)
  }
  broker.assertAlive()
})
