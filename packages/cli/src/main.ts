import { Command, InvalidArgumentError, Option } from 'commander';
import { dbUrlCommand, dbWaitCommand } from './commands/db.js';
import { DEFAULT_TIMEOUT, processIo, runCommand } from './commands/run.js';
import { downCommand } from './commands/down.js';
import { upCommand } from './commands/up.js';
import { MasterUnreachableError } from './ledger-client.js';
import { NotRunningError } from './home.js';

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError('not a number of seconds');
  return n;
}

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('not an integer');
  return n;
}

const program = new Command('jobledger')
  .description("Salt's job system as an event-sourced ledger on NATS JetStream and PostgreSQL")
  .showHelpAfterError();

program
  .command('up')
  .description('start nats-server, PostgreSQL, the dispatcher, the projector and agents under $JOBLEDGER_HOME')
  .option('--agents <ids>', 'comma-separated agent ids to host (default: this host name)')
  .option('--detach', 'return once everything is ready, leaving it running in the background')
  .action(async (opts: { agents?: string; detach?: boolean }) => {
    process.exitCode = await upCommand(opts);
  });

program
  .command('down')
  .description('stop everything `up` started')
  .action(async () => {
    process.exitCode = await downCommand();
  });

program
  .command('run')
  .description("run a function on the targeted agents, as Salt's `salt` command")
  .argument('<target>', 'agents to target (a glob unless -L or -E)')
  .argument('<fun>', 'function, e.g. test.ping or cmd.run')
  .argument('[args...]', 'positional arguments and key=value keyword arguments')
  .addOption(new Option('-t, --timeout <sec>', 'seconds to wait for returns').argParser(seconds).default(DEFAULT_TIMEOUT))
  .option('-v, --verbose', 'print the jid before waiting')
  .option('--async', 'print the jid and exit without waiting')
  .option('-L, --list', 'the target is a comma-separated list of ids')
  .option('-E, --pcre', 'the target is a regular expression, anchored at the start')
  .addOption(new Option('--out <outputter>', 'nested, json, yaml, txt, raw or quiet'))
  .addOption(new Option('--out-indent <n>', 'indentation for the json outputter').argParser(integer))
  .option('--no-color', 'never colour the output')
  .option('--force-color', 'colour the output even when it is not a terminal')
  .option('--return <returners>', 'returners to call with each return (comma-separated)')
  .allowExcessArguments(false)
  .action(async (target: string, fun: string, args: string[], opts: Record<string, unknown>) => {
    const color = opts.forceColor === true ? true : opts.color === false ? false : undefined;
    process.exitCode = await runCommand(
      target,
      fun,
      args,
      {
        timeout: opts.timeout as number,
        verbose: opts.verbose === true,
        async: opts.async === true,
        list: opts.list === true,
        pcre: opts.pcre === true,
        out: opts.out as string | undefined,
        outIndent: opts.outIndent as number | undefined,
        color,
        ret: opts.return as string | undefined,
      },
      processIo,
    );
  });

const db = program.command('db').description('the read-model database');
db.command('url')
  .description('print the PostgreSQL URL')
  .action(() => {
    process.exitCode = dbUrlCommand(processIo);
  });
db.command('wait')
  .description('wait until the read models hold every event appended so far')
  .addOption(new Option('-t, --timeout <sec>', 'give up after this many seconds').argParser(seconds).default(30))
  .action(async (opts: { timeout: number }) => {
    process.exitCode = await dbWaitCommand(opts.timeout, processIo);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof NotRunningError || err instanceof MasterUnreachableError) {
    process.stderr.write(`${err.message}\n`);
    process.exitCode = 2;
  } else {
    throw err;
  }
}
