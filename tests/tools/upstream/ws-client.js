#!/usr/bin/env node
// WebSocket client the ingress proxy tests judge with (npm `ws`). Prints one JSON object with what
// it observed on stdout; the C++ test asserts on it. Exits 0 whenever it could report, 1 on usage
// errors or an internal failure.
//
//   node ws-client.js handshake URL [--protocols a,b] [--host NAME]
//       {open, status, protocol, info (the upstream's "!info" answer), body}
//   node ws-client.js exchange URL [--host NAME]
//       text, binary, 1 MiB binary, fragmented text and binary, client ping, server ping, then a
//       client close 4002 "ciao": {results: {...}, close: {code, reason}}
//   node ws-client.js server-close URL --code 4001 --reason bye
//       asks the upstream to close: {code, reason}
//   node ws-client.js many URL --count 1000 --stats URL
//       opens `count` connections at once, each echoes a unique text and binary message while all
//       are open; {opened, echoed, mismatched, errors, upstreamActive, firstError}
//   node ws-client.js console URL --token JWT [--send TEXT] [--expect TEXT] [--ms N]
//       a DeCloud serial console: {open, status, body, sawExpected, output, dropped, close}
//   node ws-client.js slow-reader URL --pause-ms 3000 --stats URL
//       stops reading as soon as it is open, asks the upstream how much it sent after pause-ms,
//       then reads every flooded message: {sentWhilePaused, received, bytes, inOrder, finished}
'use strict';

const crypto = require('node:crypto');
const WebSocket = require('ws');

function parseArgs(argv) {
    const [command, url, ...rest] = argv.slice(2);
    if (!command || !url) throw new Error('usage: ws-client.js COMMAND URL [options]');
    const options = {};
    for (let i = 0; i < rest.length; i += 2) {
        if (!rest[i].startsWith('--') || i + 1 >= rest.length)
            throw new Error(`bad option ${rest[i]}`);
        options[rest[i].slice(2)] = rest[i + 1];
    }
    return { command, url, options };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, what) {
    let timer;
    return Promise.race([
        promise,
        new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
        }),
    ]).finally(() => clearTimeout(timer));
}

// Resolves with the socket once open, or with {status, body} when the server answered the
// upgrade with anything but 101.
function connect(url, protocols, options = {}) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(url, protocols, options);
        ws.on('open', () => resolve({ ws }));
        ws.on('unexpected-response', (req, res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () =>
                resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
        });
        ws.on('error', reject);
    });
}

// Queue of incoming messages so steps can await "the next message".
function messageQueue(ws) {
    const queue = [];
    const waiters = [];
    ws.on('message', (data, isBinary) => {
        const message = { data, isBinary };
        if (waiters.length) waiters.shift()(message);
        else queue.push(message);
    });
    return () =>
        withTimeout(new Promise((resolve) => {
            if (queue.length) resolve(queue.shift());
            else waiters.push(resolve);
        }), 10000, 'next message');
}

function closed(ws) {
    return new Promise((resolve) =>
        ws.on('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') })));
}

// --host NAME sends that Host header (the proxy's host form) instead of the URL's authority.
function hostOption(options) {
    return options.host ? { headers: { Host: options.host } } : {};
}

async function handshake(url, options) {
    const protocols = options.protocols ? options.protocols.split(',') : [];
    const result = await connect(url, protocols, hostOption(options));
    if (!result.ws) return { open: false, status: result.status, body: result.body };
    const { ws } = result;
    const next = messageQueue(ws);
    ws.send('!info');
    const info = JSON.parse((await next()).data.toString('utf8'));
    const done = closed(ws);
    ws.close(1000, 'done');
    await withTimeout(done, 10000, 'close');
    return { open: true, status: 101, protocol: ws.protocol, info };
}

async function exchange(url, options) {
    const { ws } = await connect(url, [], hostOption(options));
    if (!ws) throw new Error('upgrade refused');
    const next = messageQueue(ws);
    const results = {};
    const roundTrip = async (send) => {
        send();
        return { reply: await next() };
    };

    {
        const text = 'héllo, wörld ✓';
        const { reply } = await roundTrip(() => ws.send(text));
        results.text = { binary: reply.isBinary, same: reply.data.toString('utf8') === text };
    }
    {
        const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        const { reply } = await roundTrip(() => ws.send(bytes, { binary: true }));
        results.binary = { binary: reply.isBinary, same: Buffer.compare(reply.data, bytes) === 0 };
    }
    {
        const big = crypto.randomBytes(1024 * 1024);
        const { reply } = await roundTrip(() => ws.send(big, { binary: true }));
        results.bigBinary = {
            binary: reply.isBinary, bytes: reply.data.length, same: Buffer.compare(reply.data, big) === 0,
        };
    }
    {
        // One message in three frames: the upstream must get (and echo) it as one message.
        ws.send('frag-one|', { fin: false });
        ws.send('frag-two|', { fin: false });
        ws.send('frag-three', { fin: true });
        const reply = await next();
        results.fragmentedText = {
            binary: reply.isBinary, text: reply.data.toString('utf8'),
        };
    }
    {
        const a = Buffer.from([1, 2, 3]), b = Buffer.from([4, 5]), c = Buffer.from([6]);
        ws.send(a, { binary: true, fin: false });
        ws.send(b, { binary: true, fin: false });
        ws.send(c, { binary: true, fin: true });
        const reply = await next();
        results.fragmentedBinary = {
            binary: reply.isBinary, bytes: Array.from(reply.data),
        };
    }
    {
        const pong = new Promise((resolve) => ws.once('pong', (data) => resolve(data.toString())));
        ws.ping('are-you-there');
        results.clientPing = { pong: await withTimeout(pong, 10000, 'pong') };
    }
    {
        const reply = await roundTrip(() => ws.send('!ping from-upstream'));
        results.serverPing = { reply: reply.reply.data.toString('utf8') };
    }
    const done = closed(ws);
    ws.close(4002, 'ciao');
    const close = await withTimeout(done, 10000, 'close');
    return { results, close };
}

async function serverClose(url, options) {
    const { ws } = await connect(url, []);
    if (!ws) throw new Error('upgrade refused');
    const done = closed(ws);
    ws.send(`!close ${options.code ?? 4001} ${options.reason ?? 'bye'}`);
    return withTimeout(done, 10000, 'close');
}

async function fetchJson(url) {
    const response = await fetch(url);
    return response.json();
}

async function many(url, options) {
    const count = Number(options.count ?? '1000');
    const report = { opened: 0, echoed: 0, mismatched: 0, errors: 0, firstError: null };
    const fail = (err) => {
        report.errors++;
        report.firstError ??= String(err && err.message ? err.message : err);
    };
    const sockets = await Promise.all(Array.from({ length: count }, async (_, i) => {
        try {
            const { ws, status } = await withTimeout(connect(url, []), 60000, `open ${i}`);
            if (!ws) throw new Error(`upgrade answered ${status}`);
            report.opened++;
            return ws;
        } catch (err) {
            fail(err);
            return null;
        }
    }));
    // Every connection is open at this point: the upstream must see them all at once.
    if (options.stats) report.upstreamActive = (await fetchJson(options.stats)).wsActive;
    await Promise.all(sockets.map(async (ws, i) => {
        if (!ws) return;
        try {
            const next = messageQueue(ws);
            const text = `message ${i} ${crypto.randomUUID()}`;
            ws.send(text);
            const reply = await next();
            const bytes = crypto.randomBytes(64 + (i % 512));
            ws.send(bytes, { binary: true });
            const binaryReply = await next();
            if (!reply.isBinary && reply.data.toString('utf8') === text && binaryReply.isBinary &&
                Buffer.compare(binaryReply.data, bytes) === 0)
                report.echoed++;
            else report.mismatched++;
        } catch (err) {
            fail(err);
        }
    }));
    await Promise.all(sockets.map(async (ws) => {
        if (!ws) return;
        const done = closed(ws);
        ws.close(1000);
        try {
            await withTimeout(done, 30000, 'close');
        } catch (err) {
            fail(err);
            ws.terminate();
        }
    }));
    return report;
}

async function slowReader(url, options) {
    const pauseMs = Number(options['pause-ms'] ?? '3000');
    const ws = await new Promise((resolve, reject) => {
        const socket = new WebSocket(url);
        // Stop reading the moment the handshake is done, before any flooded frame is consumed.
        socket.on('open', () => {
            socket.pause();
            resolve(socket);
        });
        socket.on('error', reject);
    });
    let received = 0, bytes = 0, inOrder = true;
    ws.on('message', (data) => {
        if (data.length < 8 || data.readBigUInt64BE(0) !== BigInt(received)) inOrder = false;
        received++;
        bytes += data.length;
    });
    await sleep(pauseMs);
    const sentWhilePaused = options.stats ? (await fetchJson(options.stats)).wsFlood.sent : null;
    ws.resume();
    const total = Number(new URL(url).searchParams.get('total'));
    await withTimeout(new Promise((resolve) => {
        const check = () => (bytes >= total ? resolve() : setTimeout(check, 20));
        check();
    }), 120000, `flood: ${received} messages, ${bytes} bytes`);
    const done = closed(ws);
    ws.close(1000);
    await withTimeout(done, 10000, 'close');
    return { sentWhilePaused, received, bytes, inOrder };
}

// A DeCloud serial console (GET /api/vms/{id}/console): types `--send` (JSON input frames) once
// open, every 2 s until the decoded output contains `--expect` or `--ms` pass, then closes.
async function consoleSession(url, options) {
    const headers = options.token ? { Authorization: `Bearer ${options.token}` } : {};
    const result = await connect(url, [], { headers });
    if (!result.ws) return { open: false, status: result.status, body: result.body };
    const { ws } = result;
    let output = '';
    let dropped = 0;
    let badFrames = 0;
    let closeInfo = null;
    ws.on('message', (data, isBinary) => {
        try {
            const frame = JSON.parse(data.toString('utf8'));
            if (isBinary || frame.type !== 'output') throw new Error('not an output frame');
            output += Buffer.from(frame.data, 'base64').toString('latin1');
            dropped += frame.dropped;
        } catch {
            badFrames += 1;
        }
    });
    ws.on('close', (code, reason) => { closeInfo = { code, reason: reason.toString() }; });
    const expect = options.expect ?? '';
    const deadline = Date.now() + Number(options.ms ?? 20000);
    while (closeInfo === null && Date.now() < deadline && !(expect && output.includes(expect))) {
        if (options.send) ws.send(JSON.stringify({ type: 'input', text: options.send }));
        const until = Math.min(deadline, Date.now() + 2000);
        while (closeInfo === null && Date.now() < until && !(expect && output.includes(expect)))
            await sleep(50);
    }
    const sawExpected = expect !== '' && output.includes(expect);
    if (closeInfo === null) {
        const done = closed(ws);
        ws.close(1000, 'test done');
        await withTimeout(done, 10000, 'close');
    }
    return { open: true, sawExpected, output: output.slice(-2000), dropped, badFrames, close: closeInfo };
}

async function main() {
    const { command, url, options } = parseArgs(process.argv);
    const commands = {
        handshake, exchange, 'server-close': serverClose, many, 'slow-reader': slowReader,
        console: consoleSession,
    };
    if (!commands[command]) throw new Error(`unknown command ${command}`);
    const report = await commands[command](url, options);
    process.stdout.write(JSON.stringify(report) + '\n');
}

main().then(() => process.exit(0), (err) => {
    process.stdout.write(JSON.stringify({ error: String(err && err.stack ? err.stack : err) }) + '\n');
    process.exit(1);
});
