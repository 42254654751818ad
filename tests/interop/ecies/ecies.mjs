// eciesjs with its default configuration, driven by ecies_interop_test.cpp:
//   node ecies.mjs encrypt <receiver public key hex>   stdin: plaintext  -> stdout: payload hex
//   node ecies.mjs decrypt <receiver secret hex>       stdin: payload hex -> stdout: plaintext
//   node ecies.mjs public-key <secret hex>                                -> stdout: public key hex
import { readFileSync } from "node:fs";
import { decrypt, encrypt, PrivateKey } from "eciesjs";

const [command, key] = process.argv.slice(2);
const strip = (hex) => hex.trim().replace(/^0x/, "");
const input = () => readFileSync(0);

switch (command) {
  case "encrypt":
    process.stdout.write(Buffer.from(encrypt(strip(key), input())).toString("hex"));
    break;
  case "decrypt":
    process.stdout.write(Buffer.from(decrypt(strip(key), Buffer.from(strip(input().toString()), "hex"))));
    break;
  case "public-key":
    process.stdout.write(PrivateKey.fromHex(strip(key)).publicKey.toHex(false));
    break;
  default:
    process.stderr.write(`unknown command ${command}\n`);
    process.exit(2);
}
