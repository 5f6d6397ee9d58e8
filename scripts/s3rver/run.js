// Launches the SigV4-verifying S3 emulator (@20minutes/s3rver) with Sluice's test credentials.
// Its CLI can only use the built-in S3RVER/S3RVER key pair, so this uses its JS API instead:
// the default pair is revoked and the test pair registered, so a wrong secret or an unknown
// access key gets SignatureDoesNotMatch / InvalidAccessKeyId instead of a silent pass.
//
// Usage: node run.js <node_modules dir> <data dir> <address> <port> <access key> <secret> [bucket...]
'use strict'
const path = require('node:path')
const fs = require('node:fs')

const [modules, dir, address, port, accessKey, secret, ...buckets] = process.argv.slice(2)
if (!secret) {
  console.error('usage: run.js <node_modules> <dir> <address> <port> <access key> <secret> [bucket...]')
  process.exit(2)
}
const base = path.join(modules, '@20minutes', 's3rver')
const S3rver = require(base)
const AWSAccount = require(path.join(base, 'lib', 'models', 'account'))

AWSAccount.DUMMY_ACCOUNT.revokeAccessKey('S3RVER')
AWSAccount.DUMMY_ACCOUNT.createKeyPair(accessKey, secret)

fs.mkdirSync(dir, { recursive: true })
const server = new S3rver({
  address,
  port: Number(port),
  directory: dir,
  silent: true,
  allowMismatchedSignatures: false,
  // Path-style only, as MinIO without MINIO_DOMAIN: otherwise a request to a host name other
  // than localhost or the container's own (http://minio:9000 on a compose network) is read as
  // a virtual-hosted bucket, its path rewritten and its signature no longer matching.
  vhostBuckets: false,
  configureBuckets: buckets.map((name) => ({ name, configs: [] })),
})

server.run().then(
  (addr) => console.error(`s3rver listening on ${addr.address}:${addr.port}`),
  (err) => {
    console.error(`s3rver failed to start: ${err && err.stack ? err.stack : err}`)
    process.exit(1)
  }
)

// Keep-alive connections would hold close() open, so drop them and do not wait long.
function stop() {
  if (server.httpServer) server.httpServer.closeAllConnections()
  server.close().then(
    () => process.exit(0),
    () => process.exit(0)
  )
  setTimeout(() => process.exit(0), 1000).unref()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
