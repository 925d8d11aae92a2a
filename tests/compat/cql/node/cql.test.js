'use strict'
// `sluice store` with the DataStax Node.js driver (cassandra-driver 4.x), default settings apart from
// localDataCenter, which must name the data center the server reports in system.local.
// Binary under test: $SLUICE_BIN (default <repo>/build/sluice). Run: node --test tests/compat/cql/node/
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const cassandra = require('cassandra-driver')

const REPO = path.resolve(__dirname, '..', '..', '..', '..')
const SLUICE_BIN = process.env.SLUICE_BIN || path.join(REPO, 'build', 'sluice')
const DC = 'dc-sluice-test'
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function waitUntil (cond, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await cond()
    if (v) return v
    if (Date.now() >= deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

class Store {
  constructor (sets = {}) {
    this.sets = sets
    this.workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-cql-node-'))
    this.logPath = path.join(this.workdir, 'store.log')
    this.starts = 0
  }

  async start (port = 0) {
    this.starts += 1
    const ready = path.join(this.workdir, `ready.${this.starts}`)
    const args = ['store', '--listen', `127.0.0.1:${port}`, '--data-dir', path.join(this.workdir, 'data'),
      '--ready-file', ready, '--set', `store.data_center=${DC}`]
    for (const [k, v] of Object.entries(this.sets)) args.push('--set', `${k}=${v}`)
    const fd = fs.openSync(this.logPath, 'a')
    this.proc = spawn(SLUICE_BIN, args, { stdio: ['ignore', fd, fd] })
    fs.closeSync(fd)
    this.exit = null
    this.proc.on('exit', (code, signal) => { this.exit = { code, signal } })
    const line = await waitUntil(() => {
      if (this.exit) throw new Error(`store exited ${JSON.stringify(this.exit)}: ${this.logTail()}`)
      if (!fs.existsSync(ready)) return null
      const s = fs.readFileSync(ready, 'utf8')
      return s.endsWith('\n') ? s.trim() : null
    }, 30000, 'store ready file')
    this.port = Number(line.split(':').pop())
  }

  async stop () {
    if (!this.proc || this.exit) return
    this.proc.kill('SIGTERM')
    await waitUntil(() => this.exit, 30000, 'store exit')
    assert.equal(this.exit.code, 0, `store exit ${JSON.stringify(this.exit)}\n${this.logTail()}`)
  }

  logTail () {
    try { return fs.readFileSync(this.logPath, 'utf8').split('\n').slice(-40).join('\n') } catch (_) { return '' }
  }

  client (extra = {}) {
    return new cassandra.Client({ contactPoints: [`127.0.0.1:${this.port}`], localDataCenter: DC, ...extra })
  }
}

const store = new Store()
let client

before(async () => {
  await store.start()
  client = store.client()
  await client.connect()
})

after(async () => {
  if (client) await client.shutdown()
  await store.stop()
  if (!process.env.SLUICE_KEEP_TMP) fs.rmSync(store.workdir, { recursive: true, force: true })
})

test('connects with the reported data center and sees host metadata', async () => {
  const hosts = client.hosts.values()
  assert.equal(hosts.length, 1)
  assert.equal(hosts[0].datacenter, DC)
  assert.match(hosts[0].cassandraVersion, /^4\./)
  const rs = await client.execute("SELECT cluster_name, data_center FROM system.local WHERE key='local'")
  assert.equal(rs.first().data_center, DC)
})

test('a wrong localDataCenter is refused by the driver', async () => {
  const bad = store.client({ localDataCenter: 'no-such-dc' })
  await assert.rejects(bad.connect(), /no-such-dc|not found|Datacenter/i)
  await bad.shutdown()
})

test('DDL, table metadata and schema agreement', async () => {
  await client.execute("CREATE KEYSPACE IF NOT EXISTS nodeks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
  await client.execute(`CREATE TABLE nodeks.readings (device text, day int, ts timestamp, speed double, tags set<text>,
      PRIMARY KEY ((device, day), ts)) WITH CLUSTERING ORDER BY (ts DESC) AND default_time_to_live = 3600`)
  await client.metadata.refreshKeyspaces()
  const ks = client.metadata.keyspaces.nodeks
  assert.ok(ks, 'keyspace metadata')
  assert.equal(ks.strategy, 'org.apache.cassandra.locator.SimpleStrategy')
  const t = await client.metadata.getTable('nodeks', 'readings')
  assert.deepEqual(t.partitionKeys.map((c) => c.name), ['device', 'day'])
  assert.deepEqual(t.clusteringKeys.map((c) => c.name), ['ts'])
  assert.deepEqual(t.clusteringOrder, ['DESC'])
  assert.equal(t.defaultTtl, 3600)
  assert.deepEqual(t.columns.map((c) => c.name).sort(), ['day', 'device', 'speed', 'tags', 'ts'])
  await assert.rejects(client.execute('CREATE TABLE nodeks.readings (a int PRIMARY KEY)'),
    (e) => e.code === cassandra.types.responseErrorCodes.alreadyExists)
  await assert.rejects(client.execute('SELEKT * FROM nodeks.readings'),
    (e) => e.code === cassandra.types.responseErrorCodes.syntaxError)
  await assert.rejects(client.execute('SELECT * FROM nodeks.nope'),
    (e) => e.code === cassandra.types.responseErrorCodes.invalid && /nope/.test(e.message))
  assert.equal(await client.metadata.checkSchemaAgreement(), true)
})

test('prepared insert and select round-trip values', async () => {
  await client.execute('CREATE TABLE IF NOT EXISTS nodeks.iot (id uuid, ts timestamp, mileage bigint, fuel float, ' +
    'addr text, ok boolean, m map<text, int>, l list<int>, PRIMARY KEY (id, ts))')
  const id = cassandra.types.Uuid.random()
  const ins = 'INSERT INTO nodeks.iot (id, ts, mileage, fuel, addr, ok, m, l) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'
  const when = new Date(1700000000123)
  await client.execute(ins, [id, when, cassandra.types.Long.fromString('9000000000'), 0.5, 'Rue é', true,
    { a: 1, b: 2 }, [3, 1, 2]], { prepare: true })
  const rs = await client.execute('SELECT * FROM nodeks.iot WHERE id = ?', [id], { prepare: true })
  assert.equal(rs.rowLength, 1)
  const r = rs.first()
  assert.equal(r.id.toString(), id.toString())
  assert.equal(r.ts.getTime(), when.getTime())
  assert.equal(r.mileage.toString(), '9000000000')
  assert.equal(r.fuel, 0.5)
  assert.equal(r.addr, 'Rue é')
  assert.equal(r.ok, true)
  assert.deepEqual(r.m, { a: 1, b: 2 })
  assert.deepEqual(r.l, [3, 1, 2])
  // undefined parameters are sent as "unset": the column keeps its value
  await client.execute(ins, [id, when, undefined, undefined, 'changed', undefined, undefined, undefined], { prepare: true })
  const r2 = (await client.execute('SELECT addr, mileage FROM nodeks.iot WHERE id = ? AND ts = ?', [id, when], { prepare: true })).first()
  assert.equal(r2.addr, 'changed')
  assert.equal(r2.mileage.toString(), '9000000000')
})

test('paging across many pages with fetchSize, eachRow autoPage and pageState', async () => {
  await client.execute('CREATE TABLE IF NOT EXISTS nodeks.pg (p int, c int, v text, PRIMARY KEY (p, c))')
  const ins = 'INSERT INTO nodeks.pg (p, c, v) VALUES (?, ?, ?)'
  const queries = []
  for (let p = 0; p < 5; p++) for (let c = 0; c < 100; c++) queries.push({ query: ins, params: [p, c, `v${p}-${c}`] })
  for (let i = 0; i < queries.length; i += 50) await client.batch(queries.slice(i, i + 50), { prepare: true })
  // one partition, pages of 30 rows, resumed by pageState
  let pageState
  const seen = []
  let pages = 0
  do {
    const rs = await client.execute('SELECT c FROM nodeks.pg WHERE p = ?', [3], { prepare: true, fetchSize: 30, pageState })
    pages += 1
    assert.ok(rs.rowLength > 0 || !rs.pageState, 'no empty page before the last')
    for (const r of rs.rows) seen.push(r.c)
    pageState = rs.pageState
  } while (pageState)
  assert.equal(pages, 4)
  assert.deepEqual(seen, Array.from({ length: 100 }, (_, i) => i))
  // whole table through the driver's automatic paging
  let n = 0
  await new Promise((resolve, reject) => {
    client.eachRow('SELECT p, c FROM nodeks.pg', [], { prepare: true, fetchSize: 37, autoPage: true },
      () => { n += 1 }, (err) => (err ? reject(err) : resolve()))
  })
  assert.equal(n, 500)
  const cnt = await client.execute('SELECT count(*) FROM nodeks.pg')
  assert.equal(cnt.first().count.toNumber(), 500)
})

test('IF NOT EXISTS reports [applied] and TTL is readable', async () => {
  await client.execute('CREATE TABLE IF NOT EXISTS nodeks.lwt (k text PRIMARY KEY, v int)')
  const a = await client.execute('INSERT INTO nodeks.lwt (k, v) VALUES (?, ?) IF NOT EXISTS', ['x', 1], { prepare: true })
  assert.equal(a.wasApplied(), true)
  const b = await client.execute('INSERT INTO nodeks.lwt (k, v) VALUES (?, ?) IF NOT EXISTS', ['x', 2], { prepare: true })
  assert.equal(b.wasApplied(), false)
  assert.equal(b.first().v, 1)
  await client.execute('UPDATE nodeks.lwt USING TTL 1000 SET v = 5 WHERE k = ?', ['y'], { prepare: true })
  const t = (await client.execute("SELECT ttl(v) AS t FROM nodeks.lwt WHERE k = 'y'")).first().t
  assert.ok(t > 990 && t <= 1000, `ttl ${t}`)
})

test('non-frozen collections: element updates with prepared statements', async () => {
  await client.execute("CREATE KEYSPACE IF NOT EXISTS nodeks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
  await client.execute('CREATE TABLE IF NOT EXISTS nodeks.colls (k int PRIMARY KEY, l list<text>, s set<int>, m map<text, int>)')
  const p = { prepare: true }
  await client.execute('INSERT INTO nodeks.colls (k, l, s, m) VALUES (?, ?, ?, ?)', [1, ['b'], [3, 1], { y: 2 }], p)
  await client.execute('UPDATE nodeks.colls SET l = l + ?, s = s + ?, m = m + ? WHERE k = ?', [['c'], [-7], { x: 1 }, 1], p)
  await client.execute('UPDATE nodeks.colls SET l = ? + l, m[?] = ? WHERE k = ?', [['a'], 'z', 26, 1], p)
  await client.execute('UPDATE nodeks.colls SET s = s - ? WHERE k = ?', [[3], 1], p)
  await client.execute('DELETE m[?] FROM nodeks.colls WHERE k = ?', ['y', 1], p)
  let r = (await client.execute('SELECT l, s, m FROM nodeks.colls WHERE k = ?', [1], p)).first()
  assert.deepEqual(r.l, ['a', 'b', 'c'])
  assert.deepEqual(r.s, [-7, 1])
  assert.deepEqual(r.m, { x: 1, z: 26 })
  await client.execute('UPDATE nodeks.colls SET l = ? WHERE k = ?', [['only'], 1], p)
  r = (await client.execute('SELECT l FROM nodeks.colls WHERE k = ?', [1], p)).first()
  assert.deepEqual(r.l, ['only'])
})

test('table options in metadata, ALTER TABLE WITH, duration and SELECT JSON', async () => {
  await client.execute("CREATE KEYSPACE IF NOT EXISTS nodeks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
  await client.execute(`CREATE TABLE IF NOT EXISTS nodeks.opts (k int PRIMARY KEY, d duration, v varint) WITH comment = 'c1'
      AND bloom_filter_fp_chance = 0.05 AND compaction = {'class': 'LeveledCompactionStrategy'} AND crc_check_chance = 0.5`)
  let t = await client.metadata.getTable('nodeks', 'opts')
  assert.equal(t.comment, 'c1')
  assert.equal(t.bloomFilterFalsePositiveChance, 0.05)
  assert.equal(t.crcCheckChance, 0.5)
  assert.equal(t.compactionClass, 'org.apache.cassandra.db.compaction.LeveledCompactionStrategy')
  await client.execute("ALTER TABLE nodeks.opts WITH comment = 'c2'")
  await client.metadata.refreshKeyspaces()
  t = await client.metadata.getTable('nodeks', 'opts')
  assert.equal(t.comment, 'c2')
  await client.execute('INSERT INTO nodeks.opts (k, d, v) VALUES (1, 1h30m, -123456789012345678901234567890)')
  const r = (await client.execute('SELECT d, v FROM nodeks.opts WHERE k = 1')).first()
  assert.equal(r.d.toString(), '1h30m')
  assert.equal(r.v.toString(), '-123456789012345678901234567890')
  const j = (await client.execute('SELECT JSON k, d FROM nodeks.opts WHERE k = 1')).first()
  assert.deepEqual(JSON.parse(j['[json]']), { k: 1, d: '1h30m' })
})

test('PasswordAuthenticator with PlainTextAuthProvider', async () => {
  const authStore = new Store({ 'store.authenticator': 'PasswordAuthenticator', 'store.users': 'alice:s3cret' })
  await authStore.start()
  try {
    const good = authStore.client({ authProvider: new cassandra.auth.PlainTextAuthProvider('alice', 's3cret') })
    try {
      await good.connect()
      const rs = await good.execute("SELECT key FROM system.local WHERE key='local'")
      assert.equal(rs.first().key, 'local')
      assert.equal(good.hosts.values()[0].datacenter, DC)
    } finally {
      await good.shutdown()
    }
    const bad = authStore.client({ authProvider: new cassandra.auth.PlainTextAuthProvider('alice', 'nope') })
    try {
      await assert.rejects(bad.connect(), (e) => {
        const inner = Object.values(e.innerErrors || {})
        return e instanceof cassandra.errors.NoHostAvailableError && inner.length === 1 &&
          inner[0] instanceof cassandra.errors.AuthenticationError &&
          /Provided username alice and\/or password are incorrect/.test(inner[0].message)
      })
    } finally {
      await bad.shutdown()
    }
  } finally {
    await authStore.stop()
    if (!process.env.SLUICE_KEEP_TMP) fs.rmSync(authStore.workdir, { recursive: true, force: true })
  }
})
