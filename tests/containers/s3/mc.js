#!/usr/bin/env node
// The two `mc` commands compose.yaml uses, for the S3 stand-in: `mc ready ALIAS` (exit 0 once
// the server answers HTTP at all) and `mc mb [--ignore-existing] ALIAS/BUCKET` (a SigV4-signed
// PUT Bucket). Aliases come from MC_HOST_<alias>=http://KEY:SECRET@host:port, as with mc;
// `local` is http://127.0.0.1:9000 unless set.
'use strict'
const crypto = require('node:crypto')
const http = require('node:http')

function alias(name) {
  const url = process.env[`MC_HOST_${name}`] || (name === 'local' ? 'http://127.0.0.1:9000' : '')
  if (!url) fail(`mc: no alias '${name}' (set MC_HOST_${name})`, 1)
  return new URL(url)
}

function fail(msg, code) {
  console.error(msg)
  process.exit(code)
}

const sha256 = (data) => crypto.createHash('sha256').update(data).digest('hex')
const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest()

// Signs a request with an empty body (AWS Signature Version 4, region us-east-1, service s3).
function sign(method, url, path) {
  const amzDate = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '')
  const day = amzDate.slice(0, 8)
  const scope = `${day}/us-east-1/s3/aws4_request`
  const payload = sha256('')
  const headers = { host: url.host, 'x-amz-content-sha256': payload, 'x-amz-date': amzDate }
  const names = Object.keys(headers).sort()
  const canonical = [method, path, '', ...names.map((h) => `${h}:${headers[h]}`), '',
    names.join(';'), payload].join('\n')
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n')
  let key = hmac(`AWS4${decodeURIComponent(url.password)}`, day)
  for (const part of ['us-east-1', 's3', 'aws4_request']) key = hmac(key, part)
  const signature = crypto.createHmac('sha256', key).update(toSign).digest('hex')
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${decodeURIComponent(url.username)}/${scope}, ` +
    `SignedHeaders=${names.join(';')}, Signature=${signature}`
  return headers
}

function request(method, url, path, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port || 80, method, path, headers,
      timeout: 5000 }, (res) => {
      let body = ''
      res.on('data', (c) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode, body }))
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
    req.end()
  })
}

async function main(args) {
  const [cmd, ...rest] = args
  if (cmd === 'ready' && rest.length === 1) {
    const url = alias(rest[0])
    await request('GET', url, '/minio/health/ready', {}).catch((e) => fail(`mc: ${e.message}`, 1))
    return
  }
  if (cmd === 'mb') {
    const ignore = rest.includes('--ignore-existing') || rest.includes('-p')
    const target = rest.find((a) => !a.startsWith('-'))
    if (!target || !target.includes('/')) fail('usage: mc mb [--ignore-existing] ALIAS/BUCKET', 2)
    const [name, bucket] = target.split('/')
    const url = alias(name)
    const path = `/${bucket}`
    const res = await request('PUT', url, path, sign('PUT', url, path))
      .catch((e) => fail(`mc: ${e.message}`, 1))
    if (res.status === 200) {
      console.log(`Bucket created successfully \`${target}\`.`)
    } else if (res.status === 409 && ignore) {
      console.log(`Bucket \`${target}\` exists already.`)
    } else {
      fail(`mc: creating ${target}: HTTP ${res.status}\n${res.body}`, 1)
    }
    return
  }
  fail('usage: mc ready ALIAS | mc mb [--ignore-existing] ALIAS/BUCKET', 2)
}

main(process.argv.slice(2))
