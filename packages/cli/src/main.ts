import { Command, InvalidArgumentError, Option } from 'commander';
import {
  DEFAULT_GATHER_JOB_TIMEOUT,
  DEFAULT_TIMEOUT,
  RunTexts,
  TARGET_OPTIONS,
  metadataArg,
  returnKwargsArg,
  processIo,
  runCommand,
} from './commands/run.js';
import { DEFAULT_RUNNER_TIMEOUT, runnerCommand } from './commands/runner.js';
import { registerAuditTrail } from './commands/audit-trail.js';
import { MasterUnreachableError } from '@jobledger/runtime/ledger-client';

// A reader that goes away (`jobledger … | head`) ends the command quietly, as a broken pipe
// ends any Unix filter; what the command was doing is in the ledger either way.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}
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
  .showHelpAfterError()
  // commander quotes a rejected argument whole: never echo more than the start of a long one
  .configureOutput({
    outputError: (text, write) =>
      write(text.replace(/'([^'\n]{200,})'/g, (_m, arg: string) => `'${arg.slice(0, 80)}… (${arg.length} characters)'`)),
  });

program
  .command('up')
  .description('start nats-server, PostgreSQL, the dispatcher, the projector and agents under $JOBLEDGER_HOME')
  .option('--agents <ids>', "comma-separated agent ids to host, ranges as 'web-[1-1000]' or 'web-[001-100]' (default: this host name)")
  .option('--agent-processes <n>', 'agent processes to spread the ids over (default: one per id up to 8 ids, then 4)', integer)
  .option('--standby', 'also a standby projector and a second dispatcher, which take over when the first ones die')
  .option('--cluster <n>', 'run n local nats-servers as one JetStream cluster, the ledger replicated on each (R<n>)', integer)
  .option('--detach', 'return once everything is ready, leaving it running in the background')
  .action(async (opts: { agents?: string; agentProcesses?: number; standby?: boolean; cluster?: number; detach?: boolean }) => {
    const { upCommand } = await import('./commands/up.js');
    process.exitCode = await upCommand(opts);
  });

program
  .command('down')
  .description('stop everything `up` started')
  .action(async () => {
    const { downCommand } = await import('./commands/down.js');
    process.exitCode = await downCommand();
  });

program
  .command('api')
  .description("Salt's salt-api: the HTTP API (rest_cherrypy of master.yaml) in the foreground, for this home's ledger")
  .action(async () => {
    const { apiCommand } = await import('./commands/api.js');
    process.exitCode = await apiCommand();
  });

program
  .command('run')
  .description("run a function on the targeted agents, as Salt's `salt` command")
  .argument('[target]', 'agents to target (a glob unless a target option says otherwise)')
  .argument('[fun]', 'function, e.g. test.ping or cmd.run')
  .argument('[args...]', 'positional arguments and key=value keyword arguments')
  .addOption(
    new Option('-t, --timeout <sec>', 'seconds before asking silent agents whether they still run the job')
      .argParser(seconds)
      .default(DEFAULT_TIMEOUT),
  )
  .addOption(
    new Option('--gather-job-timeout <sec>', 'seconds between those questions (saltutil.find_job)')
      .argParser(seconds)
      .env('JOBLEDGER_GATHER_JOB_TIMEOUT')
      .default(DEFAULT_GATHER_JOB_TIMEOUT),
  )
  .option('-v, --verbose', 'print the jid first, and report agents that did not return')
  .option('--show-jid', 'print the jid first')
  .option('--hide-timeout', 'do not report agents that did not return')
  .option('--async', 'print the jid and exit without waiting')
  .option('-s, --static', 'gather every return, then print them all at once')
  .option('--summary', 'print a summary of the returns at the end')
  .option('-E, --pcre', 'the target is a regular expression on the ids, anchored at the start')
  .option('-L, --list', 'the target is a comma- or space-separated list of ids')
  .option('-G, --grain', 'the target is a grain glob, path:pattern')
  .option('-P, --grain-pcre', 'the target is a grain regular expression, path:pattern')
  .option('-C, --compound', 'the target is a compound expression (and/or/not, G@, P@, L@, E@, S@, N@ …)')
  .option('-N, --nodegroup', "the target is a nodegroup of the master's configuration")
  .option('-S, --ipcidr', 'the target is an address or a network, against the ipv4/ipv6 grains')
  .option('-I, --pillar', 'the target is a pillar glob (not supported)')
  .option('-J, --pillar-pcre', 'the target is a pillar regular expression (not supported)')
  .option('-R, --range', 'the target is a range expression (not supported)')
  .option('--delimiter <char>', 'grain path delimiter for -G and -P', ':')
  .addOption(new Option('--out <outputter>', 'nested, json, yaml, txt, raw, quiet or no_return'))
  .addOption(new Option('--out-indent <n>', 'indentation for the json outputter (negative: one line)').argParser(integer))
  .option('--out-file <path>', 'write the returns to this file (emptied first) instead of stdout')
  .option('--out-file-append', 'append to the --out-file instead of emptying it first')
  .option('--no-color', 'never colour the output')
  .option('--force-color', 'colour the output even when it is not a terminal')
  .option('--return <returners>', 'returners to call with each return (comma-separated)')
  .option('--return_config <name>', 'look the returner options up under <name>. first (e.g. alternative.returner.pgjsonb.host)')
  .addOption(new Option('--return-config <name>').hideHelp())
  .addOption(
    new Option('--return_kwargs <yaml>', 'returner options (YAML or JSON mapping) overriding the configured ones').argParser(
      returnKwargsArg,
    ),
  )
  .addOption(new Option('--return-kwargs <yaml>').argParser(returnKwargsArg).hideHelp())
  .addOption(new Option('--metadata <yaml>', 'a mapping (YAML or JSON) sent with the job and its returns').argParser(metadataArg))
  .allowExcessArguments(false)
  .action(async (target: string | undefined, fun: string | undefined, args: string[], opts: Record<string, unknown>) => {
    if (target === undefined) {
      process.stderr.write(RunTexts.missingTarget);
      process.exitCode = 42;
      return;
    }
    if (fun === undefined) {
      process.stderr.write(RunTexts.incompleteOptions);
      process.exitCode = 42;
      return;
    }
    const selected = TARGET_OPTIONS.filter((t) => opts[t.key] === true);
    if (selected.length > 1) {
      process.stderr.write(
        `jobledger run: error: The options ${selected.map((t) => t.flags).join(', ')} are mutually exclusive. Please only choose one of them\n`,
      );
      process.exitCode = 2;
      return;
    }
    const color = opts.forceColor === true ? true : opts.color === false ? false : undefined;
    process.exitCode = await runCommand(
      target,
      fun,
      args,
      {
        timeout: opts.timeout as number,
        gatherJobTimeout: opts.gatherJobTimeout as number,
        verbose: opts.verbose === true,
        showJid: opts.showJid === true,
        hideTimeout: opts.hideTimeout === true,
        async: opts.async === true,
        static: opts.static === true,
        summary: opts.summary === true,
        tgtType: selected[0]?.type ?? 'glob',
        delimiter: opts.delimiter as string,
        out: opts.out as string | undefined,
        outIndent: opts.outIndent as number | undefined,
        outFile: opts.outFile as string | undefined,
        outFileAppend: opts.outFileAppend === true,
        color,
        ret: opts.return as string | undefined,
        retConfig: (opts.return_config ?? opts.returnConfig) as string | undefined,
        retKwargs: (opts.return_kwargs ?? opts.returnKwargs) as Record<string, unknown> | undefined,
        metadata: opts.metadata as Record<string, unknown> | undefined,
      },
      processIo,
    );
  });

program
  .command('runner')
  .description("run a runner function on the master (jobs.list_jobs, jobs.lookup_jid, …), as Salt's `salt-run`")
  .argument('<fun>', 'runner function, e.g. jobs.list_jobs')
  .argument('[args...]', 'positional arguments and key=value keyword arguments')
  .addOption(new Option('-t, --timeout <sec>', 'seconds to wait for the answer').argParser(seconds).default(DEFAULT_RUNNER_TIMEOUT))
  .addOption(new Option('--out <outputter>', 'nested, json, yaml, txt, raw or quiet'))
  .addOption(new Option('--out-indent <n>', 'indentation for the json outputter').argParser(integer))
  .option('--no-color', 'never colour the output')
  .option('--force-color', 'colour the output even when it is not a terminal')
  .allowExcessArguments(false)
  .action(async (fun: string, args: string[], opts: Record<string, unknown>) => {
    const color = opts.forceColor === true ? true : opts.color === false ? false : undefined;
    process.exitCode = await runnerCommand(
      fun,
      args,
      { timeout: opts.timeout as number, out: opts.out as string | undefined, outIndent: opts.outIndent as number | undefined, color },
      processIo,
    );
  });

const key = program.command('key').description("the agents' keys, as Salt's salt-key: accepted, denied, unaccepted, rejected");
key
  .command('list')
  .description('list the keys in their four states (salt-key -L)')
  .option('--out <format>', 'json for salt-key --out json')
  .action(async (opts: { out?: string }) => {
    const { keyListCommand } = await import('./commands/key.js');
    process.exitCode = await keyListCommand(opts, processIo);
  });
for (const [action, letter, what] of [
  ['accept', 'a', 'accept the unaccepted keys matching a glob: those agents start answering'],
  ['reject', 'r', 'reject the unaccepted keys matching a glob'],
  ['delete', 'd', 'delete the keys matching a glob: an accepted agent is cut off at once, and targets no longer expect it'],
] as const) {
  key
    .command(action)
    .description(`${what} (salt-key -${letter})`)
    .argument('[glob]', 'agent ids (a glob)')
    .option(`-${letter === 'a' ? 'A' : letter === 'r' ? 'R' : 'D'}, --all`, "every key (the glob '*')")
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (glob: string | undefined, opts: { yes?: boolean; all?: boolean }) => {
      if (glob === undefined && !opts.all) {
        process.stderr.write(`error: jobledger key ${action} needs a glob, or --all\n`);
        process.exitCode = 2;
        return;
      }
      const { keyActionCommand } = await import('./commands/key.js');
      process.exitCode = await keyActionCommand(action, opts.all ? '*' : glob!, opts, processIo);
    });
}
key
  .command('finger')
  .description("fingerprints of the master's CA and the agents' keys (salt-key -F, -f ID)")
  .argument('[glob]', 'agent ids (a glob)')
  .action(async (glob: string | undefined) => {
    const { keyFingerCommand } = await import('./commands/key.js');
    process.exitCode = await keyFingerCommand(glob, processIo);
  });

const master = program
  .command('master')
  .description("Salt's salt-master: nats-server, PostgreSQL, the dispatcher, the projector and the keyserver under $JOBLEDGER_HOME")
  .option('--standby', 'also a standby projector and a second dispatcher, which take over when the first ones die')
  .option('--cluster <n>', 'run n local nats-servers as one JetStream cluster, the ledger replicated on each (R<n>)', integer)
  .option('--detach', 'return once everything is ready, leaving it running in the background')
  .action(async (opts: { standby?: boolean; cluster?: number; detach?: boolean }) => {
    const { upCommand } = await import('./commands/up.js');
    process.exitCode = await upCommand({ ...opts, role: 'master' });
  });
master
  .command('url')
  .description("the URL agents connect to, and the master's fingerprint (Salt's master_finger)")
  .action(async () => {
    const { masterUrlCommand } = await import('./commands/master-url.js');
    process.exitCode = masterUrlCommand(processIo);
  });

program
  .command('agent')
  .description("Salt's salt-minion: makes this home's key, waits to be accepted, then runs jobs for the accepted ids")
  .option('--master <url>', 'the master, as `jobledger master url` prints it (tls://host:port); default: master: of minion.yaml')
  .option(
    '--id <id>',
    "an id to host, or a range as 'web-[1-100]' (repeatable; default: id: of minion.yaml, else the host name)",
    (v: string, acc: string[] = []) => [...acc, v],
  )
  .option('--ids-file <file>', 'a file of ids to host: one id or range per line, # comments')
  .option('--master-port <port>', "the master's keyserver port (Salt's master_port; default: the URL's port + 1)", integer)
  .option('--detach', 'return once the key is sent, leaving the agent running in the background')
  .action(async (opts: { master?: string; id?: string[]; idsFile?: string; masterPort?: number; detach?: boolean }) => {
    const { agentCommand } = await import('./commands/agent.js');
    process.exitCode = await agentCommand(opts);
  });

const db = program.command('db').description('the read-model database');
db.command('url')
  .description("print the PostgreSQL URL (the read models' owner, not a superuser)")
  .option('--read-only', 'the URL of a role that may only SELECT')
  .action(async (opts: { readOnly?: boolean }) => {
    const { dbUrlCommand } = await import('./commands/db.js');
    process.exitCode = await dbUrlCommand(processIo, opts);
  });
db.command('wait')
  .description('wait until the read models hold every event appended so far')
  .addOption(new Option('-t, --timeout <sec>', 'give up after this many seconds').argParser(seconds).default(30))
  .action(async (opts: { timeout: number }) => {
    const { dbWaitCommand } = await import('./commands/db.js');
    process.exitCode = await dbWaitCommand(opts.timeout, processIo);
  });
db.command('migrate')
  .description('apply the migrations to the database (DATABASE_URL, else the one `up` recorded)')
  .action(async () => {
    const { dbMigrateCommand } = await import('./commands/db.js');
    process.exitCode = await dbMigrateCommand(processIo);
  });

program
  .command('replay')
  .description('rebuild every read model from the stream into a fresh schema (and with --swap, replace the live one)')
  .addOption(new Option('--from-seq <n>', 'replay from this stream sequence (a partial rebuild)').argParser(integer).conflicts('since'))
  .option('--since <time>', 'replay from the first event stored at or after this time (a partial rebuild)')
  .option('--into <schema>', 'the schema to build in (default replay_<stamp>); it must not hold anything')
  .option('--swap', 'replace the live tables with the rebuild in one transaction (the previous ones are kept in a renamed schema)')
  .allowExcessArguments(false)
  .action(async (opts: { fromSeq?: number; since?: string; into?: string; swap?: boolean }) => {
    const { replayCommand } = await import('./commands/replay.js');
    process.exitCode = await replayCommand(opts, { ...processIo, stderrIsTTY: process.stderr.isTTY === true });
  });

// `audit`: verify here (its module, with the projector, loaded when it runs); trail from its file.
const audit = program.command('audit').description('check the read models against the ledger stream');
audit
  .command('verify')
  .description('rebuild the read models in a scratch schema and compare them, row by row and by hash chain, with the live ones')
  .action(async () => {
    const { auditVerifyCommand } = await import('./commands/audit.js');
    process.exitCode = await auditVerifyCommand({ ...processIo, stderrIsTTY: process.stderr.isTTY === true });
  });
registerAuditTrail(audit);

// No top-level await: the bundle is a CommonJS script, so that bin/jobledger.js can give V8 the
// code it compiled in an earlier run of the same command (a code cache).
program.parseAsync(process.argv).catch(async (err: unknown) => {
  // Loaded only now: commands that never touch PostgreSQL start without its libraries.
  const { DatabaseNotReadyError } = await import('@jobledger/runtime');
  if (err instanceof NotRunningError || err instanceof MasterUnreachableError || err instanceof DatabaseNotReadyError) {
    process.stderr.write(`${err.message}\n`);
    process.exitCode = 2;
  } else {
    throw err;
  }
});
