#!/usr/bin/env node
// Compiles one Solidity file with solc-js and prints the creation bytecode of its contract as
// JSON: {"contract": NAME, "bytecode": "0x..."}. Exits non-zero with solc's errors otherwise.
//   node compile.js path/to/Contract.sol ContractName
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const solc = require('solc');

const [file, contract] = process.argv.slice(2);
if (!file || !contract) {
    console.error('usage: compile.js FILE.sol CONTRACT');
    process.exit(2);
}
const source = path.basename(file);
const input = {
    language: 'Solidity',
    sources: { [source]: { content: fs.readFileSync(file, 'utf8') } },
    settings: {
        evmVersion: 'cancun',
        optimizer: { enabled: true, runs: 200 },
        outputSelection: { '*': { '*': ['evm.bytecode.object'] } },
    },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === 'error');
if (errors.length > 0) {
    for (const e of errors) console.error(e.formattedMessage);
    process.exit(1);
}
const compiled = output.contracts[source] && output.contracts[source][contract];
if (!compiled) {
    console.error(`contract ${contract} not found in ${file}`);
    process.exit(1);
}
process.stdout.write(JSON.stringify({ contract, bytecode: '0x' + compiled.evm.bytecode.object }));
