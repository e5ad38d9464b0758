import { createReadStream, createWriteStream, existsSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { SigningKeyCipher } from '../domain/signing-key-cipher.js';
import { createLogger } from '../observability/logger.js';
import { storeFromConfig } from '../runtime/store-factory.js';
import { exportLines } from '../store/transfer/export.js';
import { RECORD_TYPES, type Counts } from '../store/transfer/format.js';
import { ImportRefusedError, checkExport, importExport } from '../store/transfer/import.js';
import type { KeyStore } from '../store/types.js';
import type { Io } from './command.js';
import { CliError, EXIT, UsageError } from './exit-codes.js';
import { outputFormat, renderRows } from './output.js';
import { keygateVersion } from './version.js';

export const EXPORT_USAGE = `usage:
  keygate export --config <file> [--file <path>]    writes the whole store as a stream (stdout without --file)
  keygate import --config <file> [--file <path>]    loads a stream into an empty store (stdin without --file)
  keygate import --config <file> --check [--file <path>]   checks a stream (a backup) without writing
Both read and write the store of the config's store section directly, as serve does (an
embedded store only while keygate is stopped). The stream holds key hashes and sealed signing
keys: keep it like the store itself. Source and target must share secrets.pepper (and
secrets.signingKeyEncryptionKey, when set).`;

const FLAGS = { config: { type: 'string', short: 'c' }, file: { type: 'string', short: 'f' }, output: { type: 'string', short: 'o' }, check: { type: 'boolean' } } as const;

function parse(args: string[], command: string): { config: Config; configFile: string; file: string | undefined; output: string | undefined; check: boolean } {
  const { values, positionals } = parseArgs({ args, options: FLAGS, allowPositionals: true, strict: true });
  if (values.check === true && command !== 'import') throw new UsageError('--check is an import flag');
  if (values.config === undefined) throw new UsageError(`${command} needs --config <file> (the config of the node whose store it ${command === 'export' ? 'reads' : 'fills'})`);
  if (positionals.length > 1 || (positionals.length === 1 && values.file !== undefined)) throw new UsageError(`${command} takes one file: --file <path>`);
  const loaded = loadConfigFile(values.config);
  if (!loaded.ok) throw new CliError(loaded.errors.map((e) => `${values.config}: ${e}`).join('\n'), EXIT.FAILED);
  const file = values.file ?? positionals[0];
  return { config: loaded.config, configFile: values.config, file: file === '-' ? undefined : file, output: values.output, check: values.check === true };
}

function describeStore(config: Config): string {
  if (config.store.driver === 'embedded') return `the embedded store at ${resolve(config.store.path)}`;
  const where = config.store.url !== undefined ? redact(config.store.url) : (config.store.cluster ?? []).map(redact).join(', ');
  return `the Redis store at ${where} (keyPrefix "${config.store.keyPrefix}")`;
}

/** A Redis URL without its password. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

async function openStore(config: Config): Promise<KeyStore> {
  const logger = createLogger({ level: process.env.KEYGATE_LOG_LEVEL ?? 'warn', sync: true, fd: 2 });
  const { store } = storeFromConfig(config, logger);
  try {
    await store.open();
  } catch (err) {
    await store.close().catch(() => undefined);
    const inUse = /in use by process/.test((err as Error).message) ? ': stop keygate first (export and import open the embedded store themselves, and it has a single writer)' : '';
    throw new CliError(`cannot open ${describeStore(config)}: ${(err as Error).message}${inUse}`, EXIT.FAILED);
  }
  return store;
}

const total = (counts: Counts): string =>
  RECORD_TYPES.filter((t) => counts[t] > 0).map((t) => `${counts[t]} ${t}${counts[t] === 1 ? '' : ' records'}`).join(', ') || 'nothing';

/** Writes to a stream, waiting while its buffer is full. */
async function writeOut(stream: NodeJS.WritableStream, text: string): Promise<void> {
  if (!stream.write(text)) await new Promise<void>((resolveDrain) => stream.once('drain', resolveDrain));
}

export async function runExport(args: string[], io: Io): Promise<number> {
  const { config, file } = parse(args, 'export');
  // Opening an embedded store makes its directory: a mistyped store.path must not export an empty store.
  if (config.store.driver === 'embedded' && !existsSync(config.store.path)) {
    throw new CliError(`there is no store at ${resolve(config.store.path)} (store.path of ${describeStore(config)}): nothing to export`, EXIT.FAILED);
  }
  const store = await openStore(config);
  const pepper = config.secrets.pepper;
  const cipher = SigningKeyCipher.fromSecrets(config.secrets);
  let temp: string | null = null;
  let fh: fsp.FileHandle | null = null;
  try {
    if (file !== undefined) {
      // Written under a temporary name and renamed when complete: a file at `file` is always a whole export.
      temp = join(dirname(resolve(file)), `.${basename(file)}.${process.pid}.tmp`);
      fh = await fsp.open(temp, 'wx', 0o600);
    }
    const target = fh;
    let pending = '';
    const flush = async (): Promise<void> => {
      if (pending === '') return;
      const chunk = pending;
      pending = '';
      if (target !== null) await target.write(chunk);
      else await writeOut(process.stdout, chunk);
    };
    const lines = exportLines(store, { pepper, cipher, keygateVersion: keygateVersion() });
    let counts: Counts;
    for (;;) {
      const next = await lines.next();
      if (next.done) {
        counts = next.value;
        break;
      }
      pending += `${next.value}\n`;
      if (pending.length >= 64 * 1024) await flush();
    }
    await flush();
    if (target !== null && temp !== null && file !== undefined) {
      await target.sync();
      fh = null;
      await target.close();
      await fsp.rename(temp, file);
      temp = null;
    }
    io.err(`exported ${total(counts)} from ${describeStore(config)}${file !== undefined ? ` to ${file}` : ''}`);
    if (Object.values(counts).every((n) => n === 0)) io.err(`warning: that store was never written: is ${config.store.driver === 'embedded' ? 'store.path' : 'store.keyPrefix'} the one keygate runs on?`);
    return EXIT.OK;
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`export failed: ${(err as Error).message}`, EXIT.FAILED);
  } finally {
    await fh?.close().catch(() => undefined);
    if (temp !== null) await fsp.rm(temp, { force: true });
    await store.close();
  }
}

/** The lines of a file, read afresh on each call. */
const fileLines = (path: string) => (): AsyncIterable<string> => createInterface({ input: createReadStream(path), crlfDelay: Infinity });

export async function runImport(args: string[], io: Io, stdin: NodeJS.ReadableStream = process.stdin): Promise<number> {
  const { config, file, output, check } = parse(args, 'import');
  const format = outputFormat(output, io.env);
  let spool: string | null = null;
  let path = file;
  if (path === undefined) {
    // The stream is read twice (checked whole, then written): standard input goes to a private temporary file first.
    spool = await fsp.mkdtemp(join(tmpdir(), 'keygate-import-'));
    path = join(spool, 'stream.ndjson');
    await pipeline(stdin, createWriteStream(path, { mode: 0o600 }));
  } else {
    await fsp.access(path).catch((err: NodeJS.ErrnoException) => {
      throw new CliError(`cannot read ${path}: ${err.code ?? err.message}`, EXIT.FAILED);
    });
  }
  let store: KeyStore | null = null;
  try {
    const opts = { pepper: config.secrets.pepper, cipher: SigningKeyCipher.fromSecrets(config.secrets), activityPerKey: config.keys.activityPerKey };
    if (check) {
      // A backup's check: the whole stream against this config's pepper and encryption key; no store is opened.
      let counts: Counts;
      try {
        counts = await checkExport(fileLines(path)(), opts);
      } catch (err) {
        if (err instanceof ImportRefusedError) throw new CliError(`the stream would be refused: ${err.message}`, EXIT.IMPORT_REFUSED);
        throw err;
      }
      if (format === 'json') io.out(JSON.stringify({ valid: true, records: counts }, null, 2));
      else io.out(renderRows(['RECORDS', 'COUNT'], RECORD_TYPES.map((t) => [t, String(counts[t])])));
      io.err(`a whole export of ${total(counts)}, for this config's pepper and signing-key encryption`);
      return EXIT.OK;
    }
    store = await openStore(config);
    let counts: Counts;
    try {
      counts = await importExport(store, fileLines(path), opts);
    } catch (err) {
      if (err instanceof ImportRefusedError) throw new CliError(`import refused, nothing written: ${err.message}`, EXIT.IMPORT_REFUSED);
      throw new CliError(`the import stopped while writing (${(err as Error).message}); ${describeStore(config)} now holds part of the export: empty it before importing again`, EXIT.FAILED);
    }
    if (format === 'json') io.out(JSON.stringify({ imported: counts, store: config.store.driver }, null, 2));
    else io.out(renderRows(['RECORDS', 'COUNT'], RECORD_TYPES.map((t) => [t, String(counts[t])])));
    io.err(`imported ${total(counts)} into ${describeStore(config)}`);
    return EXIT.OK;
  } finally {
    await store?.close();
    if (spool !== null) await fsp.rm(spool, { recursive: true, force: true });
  }
}
