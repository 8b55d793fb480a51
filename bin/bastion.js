#!/usr/bin/env node
// Node 22.18+ runs the TypeScript sources directly (type stripping); no build step.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`Bastion needs Node.js 22.18 or newer (this is ${process.version}). Run it through npm (npm start), which uses the bundled Node 22.\n`);
  process.exit(1);
}
const { main } = await import('../src/cli/bastion.ts');
const code = await main(process.argv.slice(2));
if (code !== 0) process.exitCode = code;
