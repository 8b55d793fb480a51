import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';

/**
 * The backup archive container (`bastion backup`): one file,
 *
 *     "BSTNBKP1" | u32 BE header length | header (JSON, UTF-8) | member 1 chunks | member 2 chunks | ...
 *
 * The header is readable without any key (it must be: it says which key provider wrapped the
 * archive key, and carries that wrapped key); it holds no PHI. Each member (a file of the data
 * dir) is cut into chunks of `chunkSize` bytes (the last may be shorter; an empty member has one
 * empty chunk), each sealed with AES-256-GCM under the archive key and stored as
 * `ciphertext | 16-byte tag`. Nothing else is stored: a chunk's position is implied by the sizes
 * the header lists.
 *
 * - nonce: u32 member index | u64 chunk index. The archive key is random and used for this one
 *   archive only, so no nonce repeats under a key (and none needs storing).
 * - AAD: format | SHA-256 of the header bytes | member name | chunk index | final flag. So a flipped
 *   bit anywhere (header included: changing a listed size, hash or name changes every chunk's
 *   AAD), chunks reordered or moved between members or archives, a member cut short or the archive
 *   truncated after a chunk boundary (the last chunk read is then not the one sealed as final),
 *   all fail authentication. Only authenticated plaintext is ever handed on.
 *
 * This module is only the container; what goes in it and how the archive key is wrapped is
 * src/cli/backup.ts's business.
 */
export const archiveFormat = 'bastion-backup/1';
const magic = Buffer.from('BSTNBKP1', 'latin1');
const tagLength = 16;
const maxHeaderBytes = 16 * 1024 * 1024;
export const defaultChunkSize = 1024 * 1024;

export interface ArchiveMember {
  name: string;
  /** Plaintext bytes. */
  size: number;
  /** SHA-256 of the plaintext, hex: checked again after decryption, end to end. */
  sha256: string;
}

/** The fields the container itself needs; the caller adds its own (all in the clear: no secrets, no PHI). */
export interface ArchiveHeader {
  format: typeof archiveFormat;
  /** Random, unique per archive. */
  id: string;
  /** ISO-8601 UTC. */
  created: string;
  chunkSize: number;
  members: ArchiveMember[];
}

/** The archive is not a Bastion archive, is damaged, truncated or was altered. */
export class ArchiveError extends Error {}

/** Where a member's plaintext comes from: bytes in memory, or the first `size` bytes of a file. */
export type MemberSource = { name: string; data: Buffer } | { name: string; path: string; size: number };

/** Size and SHA-256 of a member source (a first pass over it, so the header can precede the members). */
export async function describeMember(source: MemberSource, chunkSize = defaultChunkSize): Promise<ArchiveMember> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const piece of readSource(source, chunkSize)) {
    hash.update(piece);
    size += piece.length;
  }
  return { name: source.name, size, sha256: hash.digest('hex') };
}

/**
 * Writes the archive to `path` (which must not exist; created owner-only). `header.members` must
 * describe `sources` in order (describeMember); a source that no longer matches its description
 * fails the write. Returns the archive's size and SHA-256 (for the operator's records).
 */
export async function writeArchive(
  path: string, header: ArchiveHeader, sources: MemberSource[], key: Buffer,
  progress?: (done: number, total: number) => void,
): Promise<{ bytes: number; sha256: string }> {
  if (key.length !== 32) throw new Error('the archive key must be 32 bytes');
  if (sources.length !== header.members.length) throw new Error('every member needs a source');
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  if (headerBytes.length > maxHeaderBytes) throw new Error('the archive header is too large');
  const lead = Buffer.concat([magic, u32(headerBytes.length), headerBytes]);
  const digest = sha256(lead);
  const whole = createHash('sha256');
  const total = header.members.reduce((n, m) => n + m.size, 0);
  let done = 0;
  let bytes = 0;
  const file = await open(path, 'wx', 0o600);
  try {
    const write = async (b: Buffer) => {
      await file.write(b);
      whole.update(b);
      bytes += b.length;
    };
    await write(lead);
    for (const [index, member] of header.members.entries()) {
      const source = sources[index];
      if (source.name !== member.name) throw new Error(`member ${index} is ${member.name} in the header, ${source.name} in the sources`);
      const hash = createHash('sha256');
      let chunk = 0;
      let size = 0;
      // One chunk is held back until the next is read: only then is it known whether it is the final one.
      let pending: Buffer | undefined;
      for await (const piece of readSource(source, header.chunkSize)) {
        if (pending) await write(seal(key, digest, member.name, index, chunk++, false, pending));
        pending = piece;
        hash.update(piece);
        size += piece.length;
        done += piece.length;
        progress?.(done, total);
      }
      await write(seal(key, digest, member.name, index, chunk, true, pending ?? Buffer.alloc(0)));
      if (size !== member.size || hash.digest('hex') !== member.sha256) {
        throw new Error(`${member.name} changed while the archive was written`);
      }
    }
    await file.sync();
  } finally {
    await file.close();
  }
  return { bytes, sha256: whole.digest('hex') };
}

export interface OpenedArchive<H extends ArchiveHeader = ArchiveHeader> {
  path: string;
  header: H;
  /** SHA-256 of magic | length | header: in every chunk's AAD. */
  digest: Buffer;
  /** Where the first member's first chunk starts. */
  dataStart: number;
}

/**
 * Reads and checks the header (format, member list, that the file is exactly as long as the
 * header says). The header is only authenticated by the first chunk that decrypts; until then
 * treat what it says as a claim.
 */
export async function readArchiveHeader(path: string): Promise<OpenedArchive> {
  let file: FileHandle;
  try {
    file = await open(path, 'r');
  } catch (err) {
    throw new ArchiveError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const { size: fileSize } = await file.stat();
    const first = await readExactly(file, 0, magic.length + 4);
    if (!first || !first.subarray(0, magic.length).equals(magic)) throw new ArchiveError(`${path} is not a Bastion backup archive`);
    const length = first.readUInt32BE(magic.length);
    if (length === 0 || length > maxHeaderBytes) throw new ArchiveError(`${path}: the archive header is damaged`);
    const headerBytes = await readExactly(file, first.length, length);
    if (!headerBytes) throw new ArchiveError(`${path} is truncated (it ends inside its header)`);
    let header: ArchiveHeader;
    try {
      header = JSON.parse(headerBytes.toString('utf8')) as ArchiveHeader;
    } catch {
      throw new ArchiveError(`${path}: the archive header is damaged (not JSON)`);
    }
    checkHeader(header, path);
    const dataStart = first.length + length;
    const expected = dataStart + header.members.reduce((n, m) => n + m.size + chunkCount(m.size, header.chunkSize) * tagLength, 0);
    if (fileSize < expected) throw new ArchiveError(`${path} is truncated: ${fileSize.toLocaleString('en-US')} bytes of the ${expected.toLocaleString('en-US')} its header describes`);
    if (fileSize > expected) throw new ArchiveError(`${path} has ${(fileSize - expected).toLocaleString('en-US')} bytes more than its header describes: it was altered or is not one archive`);
    return { path, header, digest: sha256(Buffer.concat([first, headerBytes])), dataStart };
  } finally {
    await file.close();
  }
}

/** Where a member's authenticated plaintext goes. */
export interface MemberSink {
  write(plaintext: Buffer): Promise<void>;
  /** Called once every chunk of the member authenticated and its SHA-256 matched. */
  finish(): Promise<void>;
}

/**
 * Decrypts every member in order, handing each authenticated chunk to the member's sink; throws
 * ArchiveError at the first chunk that does not authenticate, a member whose SHA-256 differs, or
 * a file that ends early or goes on after the last member.
 */
export async function extractArchive(
  archive: OpenedArchive, key: Buffer, sinkOf: (member: ArchiveMember) => Promise<MemberSink>,
  progress?: (done: number, total: number) => void,
): Promise<void> {
  const { header, digest, path } = archive;
  const total = header.members.reduce((n, m) => n + m.size, 0);
  let done = 0;
  let position = archive.dataStart;
  const file = await open(path, 'r');
  try {
    for (const [index, member] of header.members.entries()) {
      const sink = await sinkOf(member);
      const hash = createHash('sha256');
      const chunks = chunkCount(member.size, header.chunkSize);
      for (let chunk = 0; chunk < chunks; chunk++) {
        const plainLength = Math.min(header.chunkSize, member.size - chunk * header.chunkSize);
        const sealed = await readExactly(file, position, plainLength + tagLength);
        if (!sealed) throw new ArchiveError(`${path} is truncated (inside ${member.name})`);
        position += sealed.length;
        const plaintext = unseal(key, digest, member.name, index, chunk, chunk === chunks - 1, sealed);
        if (!plaintext) {
          throw new ArchiveError(`${path} was altered or is damaged: ${member.name} (chunk ${chunk + 1} of ${chunks}) does not authenticate${index === 0 && chunk === 0 ? ' (or its header was changed)' : ''}`);
        }
        hash.update(plaintext);
        await sink.write(plaintext);
        done += plaintext.length;
        progress?.(done, total);
      }
      if (hash.digest('hex') !== member.sha256) throw new ArchiveError(`${path}: ${member.name} does not match its SHA-256`);
      await sink.finish();
    }
    const { size } = await file.stat();
    if (size !== position) throw new ArchiveError(`${path} goes on after its last member: it was altered or is not one archive`);
  } finally {
    await file.close();
  }
}

function checkHeader(header: ArchiveHeader, path: string): void {
  const bad = (what: string) => new ArchiveError(`${path}: the archive header is damaged (${what})`);
  if (typeof header !== 'object' || header === null) throw bad('not an object');
  if (header.format !== archiveFormat) {
    throw new ArchiveError(`${path} is a ${typeof header.format === 'string' ? header.format : 'unknown'} archive; this Bastion reads ${archiveFormat}`);
  }
  if (typeof header.id !== 'string' || header.id.length === 0) throw bad('id');
  if (!Number.isInteger(header.chunkSize) || header.chunkSize < 4096 || header.chunkSize > 64 * 1024 * 1024) throw bad('chunkSize');
  if (!Array.isArray(header.members) || header.members.length === 0) throw bad('members');
  const names = new Set<string>();
  for (const m of header.members) {
    if (typeof m?.name !== 'string' || names.has(m.name)) throw bad('member names');
    if (!Number.isSafeInteger(m.size) || m.size < 0) throw bad(`${m.name} size`);
    if (typeof m.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(m.sha256)) throw bad(`${m.name} sha256`);
    names.add(m.name);
  }
}

const chunkCount = (size: number, chunkSize: number) => Math.max(1, Math.ceil(size / chunkSize));

function nonceOf(member: number, chunk: number): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32BE(member, 0);
  nonce.writeBigUInt64BE(BigInt(chunk), 4);
  return nonce;
}

function aadOf(digest: Buffer, name: string, chunk: number, final: boolean): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  const index = Buffer.alloc(8);
  index.writeBigUInt64BE(BigInt(chunk));
  return Buffer.concat([Buffer.from(`${archiveFormat}\0`), digest, u32(nameBytes.length), nameBytes, index, Buffer.from([final ? 1 : 0])]);
}

function seal(key: Buffer, digest: Buffer, name: string, member: number, chunk: number, final: boolean, plaintext: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, nonceOf(member, chunk));
  cipher.setAAD(aadOf(digest, name, chunk, final));
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** The plaintext, or undefined when the chunk does not authenticate. */
function unseal(key: Buffer, digest: Buffer, name: string, member: number, chunk: number, final: boolean, sealed: Buffer): Buffer | undefined {
  const decipher = createDecipheriv('aes-256-gcm', key, nonceOf(member, chunk));
  decipher.setAAD(aadOf(digest, name, chunk, final));
  decipher.setAuthTag(sealed.subarray(sealed.length - tagLength));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - tagLength)), decipher.final()]);
  } catch {
    return undefined;
  }
}

/** The source's bytes in pieces of `chunkSize` (the last may be shorter). */
async function* readSource(source: MemberSource, chunkSize: number): AsyncGenerator<Buffer> {
  if ('data' in source) {
    for (let at = 0; at < source.data.length; at += chunkSize) yield source.data.subarray(at, at + chunkSize);
    return;
  }
  const file = await open(source.path, 'r');
  try {
    for (let at = 0; at < source.size; at += chunkSize) {
      const piece = await readExactly(file, at, Math.min(chunkSize, source.size - at));
      if (!piece) throw new Error(`${source.name} is shorter than it was`);
      yield piece;
    }
  } finally {
    await file.close();
  }
}

/** `length` bytes at `position`, or undefined when the file ends first. */
async function readExactly(file: FileHandle, position: number, length: number): Promise<Buffer | undefined> {
  const buffer = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await file.read(buffer, got, length - got, position + got);
    if (bytesRead === 0) return undefined;
    got += bytesRead;
  }
  return buffer;
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();
