#!/usr/bin/env node
// consuldev: serve the Consul-compatible development server until SIGINT or SIGTERM.
//   node dist/src/consuldev/cli.js --client 127.0.0.1 --http-port 8500
// Prints the address ("127.0.0.1:8500") on stdout once it is listening.

import { Command, InvalidArgumentError } from 'commander';
import { log as logger, setLogLevel } from '../log.js';
import { startConsulDev } from './index.js';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('must be a port number from 0 to 65535 (0 picks a free one)');
  return n;
}

const program = new Command('consuldev')
  .description("Consul-compatible development server (in memory; KV, sessions, blocking queries)")
  .option('--client <address>', 'address the HTTP API listens on', '127.0.0.1')
  .option('--http-port <port>', 'HTTP API port (0 picks a free one)', port, 8500)
  .option('--node <name>', 'node name the agent reports and gives to sessions')
  .option('--debug', 'log each start and stop in detail', false)
  .parse();

const flags = program.opts<{ client: string; httpPort: number; node?: string; debug: boolean }>();
if (flags.debug) setLogLevel('debug');

try {
  const dev = await startConsulDev({
    host: flags.client,
    port: flags.httpPort,
    nodeName: flags.node,
    log: (line) => logger.debug(line),
  });
  process.stdout.write(dev.address + '\n');
  const stop = (signal: string): void => {
    logger.debug('consuldev: stopping', { signal });
    dev.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
} catch (err) {
  const message = err instanceof Error ? err.message : String(err);
  logger.error(`consuldev: cannot listen on ${flags.client}:${flags.httpPort}: ${message}`);
  process.exit(1);
}
