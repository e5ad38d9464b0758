import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { BASE62, toBase62 } from './ids.js';
import { checkSecretFormat, generateSecret, hashSecret, safeEqual } from './secret.js';

const SHAPE = /^kg_(live|test)_([0-9A-Za-z]{24})_([0-9A-Za-z]{6})$/;

/** Appends a checksum the way a well-formed secret carries it (CRC-32 of the body, 6 base62 chars). */
function withChecksum(body: string): string {
  return `${body}_${toBase62(crc32(body), 6)}`;
}

/** A different base62 character than `c`. */
function otherBase62(c: string): string {
  const i = BASE62.indexOf(c);
  return BASE62[(i + 1) % BASE62.length]!;
}

function randomPart(secret: string): string {
  return SHAPE.exec(secret)![2]!;
}

describe('generateSecret', () => {
  it('produces kg_live_<24 base62>_<6 base62> for the live environment', () => {
    const { secret } = generateSecret('live');
    expect(secret).toMatch(/^kg_live_[0-9A-Za-z]{24}_[0-9A-Za-z]{6}$/);
  });

  it('produces kg_test_<24 base62>_<6 base62> for the test environment', () => {
    const { secret } = generateSecret('test');
    expect(secret).toMatch(/^kg_test_[0-9A-Za-z]{24}_[0-9A-Za-z]{6}$/);
  });

  it('carries at least 128 bits of randomness in its random part', () => {
    const { secret } = generateSecret('live');
    const random = randomPart(secret);
    expect(random.length * Math.log2(62)).toBeGreaterThanOrEqual(128);
  });

  it('uses the whole base62 alphabet in its random parts', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) for (const c of randomPart(generateSecret('live').secret)) seen.add(c);
    expect(seen.size).toBe(62);
  });

  it('gives a prefix of kg_<env>_ followed by the first four random characters', () => {
    for (const env of ['live', 'test'] as const) {
      const { secret, prefix } = generateSecret(env);
      expect(prefix).toBe(`kg_${env}_${randomPart(secret).slice(0, 4)}`);
      expect(secret.startsWith(prefix)).toBe(true);
    }
  });

  it('appends the checksum of the body so the helper in this file agrees with it', () => {
    const { secret } = generateSecret('live');
    expect(withChecksum(secret.slice(0, -7))).toBe(secret);
  });

  it('never produces the same secret twice in 1000 draws', () => {
    const secrets = new Set<string>();
    for (let i = 0; i < 1000; i++) secrets.add(generateSecret(i % 2 === 0 ? 'live' : 'test').secret);
    expect(secrets.size).toBe(1000);
  });
});

describe('checkSecretFormat', () => {
  it('accepts a generated live secret and returns "live"', () => {
    expect(checkSecretFormat(generateSecret('live').secret)).toBe('live');
  });

  it('accepts a generated test secret and returns "test"', () => {
    expect(checkSecretFormat(generateSecret('test').secret)).toBe('test');
  });

  it('accepts every one of many generated secrets', () => {
    for (let i = 0; i < 200; i++) {
      const env = i % 2 === 0 ? 'live' : 'test';
      expect(checkSecretFormat(generateSecret(env).secret)).toBe(env);
    }
  });

  it('rejects a secret with any one character of its random part changed', () => {
    for (let n = 0; n < 20; n++) {
      const { secret } = generateSecret('live');
      for (let i = 8; i < 8 + 24; i++) {
        const changed = secret.slice(0, i) + otherBase62(secret[i]!) + secret.slice(i + 1);
        expect(checkSecretFormat(changed), `position ${i} of ${changed}`).toBeNull();
      }
    }
  });

  it('rejects a secret whose checksum was changed in any one character', () => {
    for (let n = 0; n < 20; n++) {
      const { secret } = generateSecret('test');
      for (let i = secret.length - 6; i < secret.length; i++) {
        const changed = secret.slice(0, i) + otherBase62(secret[i]!) + secret.slice(i + 1);
        expect(checkSecretFormat(changed), `position ${i} of ${changed}`).toBeNull();
      }
    }
  });

  it('rejects a secret with any one character changed anywhere, separators included', () => {
    const { secret } = generateSecret('live');
    for (let i = 0; i < secret.length; i++) {
      for (const replacement of ['x', '_', '-', 'A', '0']) {
        if (replacement === secret[i]) continue;
        const changed = secret.slice(0, i) + replacement + secret.slice(i + 1);
        expect(checkSecretFormat(changed), `position ${i} -> ${replacement}`).toBeNull();
      }
    }
  });

  it('rejects a live secret relabelled as test even though its shape is right', () => {
    const { secret } = generateSecret('live');
    expect(checkSecretFormat(secret.replace(/^kg_live_/, 'kg_test_'))).toBeNull();
  });

  it('rejects an unknown environment even with a matching checksum', () => {
    const random = randomPart(generateSecret('live').secret);
    expect(checkSecretFormat(withChecksum(`kg_prod_${random}`))).toBeNull();
    expect(checkSecretFormat(withChecksum(`kg_LIVE_${random}`))).toBeNull();
    expect(checkSecretFormat(withChecksum(`kg_liv_${random}x`))).toBeNull();
  });

  it('rejects a random part one character too short or too long even with a matching checksum', () => {
    const random = randomPart(generateSecret('live').secret);
    expect(checkSecretFormat(withChecksum(`kg_live_${random.slice(1)}`))).toBeNull();
    expect(checkSecretFormat(withChecksum(`kg_live_${random}Z`))).toBeNull();
  });

  it('rejects a non-base62 character in the random part even with a matching checksum', () => {
    const random = randomPart(generateSecret('live').secret);
    expect(checkSecretFormat(withChecksum(`kg_live_-${random.slice(1)}`))).toBeNull();
    expect(checkSecretFormat(withChecksum(`kg_live_é${random.slice(1)}`))).toBeNull();
  });

  it('rejects a secret with a character appended or prepended', () => {
    const { secret } = generateSecret('live');
    expect(checkSecretFormat(`${secret}0`)).toBeNull();
    expect(checkSecretFormat(`x${secret}`)).toBeNull();
    expect(checkSecretFormat(`${secret}\n`)).toBeNull();
    expect(checkSecretFormat(` ${secret}`)).toBeNull();
  });

  it('rejects a secret with its last character removed', () => {
    const { secret } = generateSecret('live');
    expect(checkSecretFormat(secret.slice(0, -1))).toBeNull();
  });

  it('rejects a checksum of the wrong length', () => {
    const { secret } = generateSecret('live');
    expect(checkSecretFormat(`${secret.slice(0, -7)}_${secret.slice(-5)}`)).toBeNull();
    expect(checkSecretFormat(`${secret.slice(0, -7)}_0${secret.slice(-6)}`)).toBeNull();
  });

  it('rejects the empty string and obvious non-secrets', () => {
    expect(checkSecretFormat('')).toBeNull();
    expect(checkSecretFormat('kg_live_')).toBeNull();
    expect(checkSecretFormat('not-a-secret')).toBeNull();
  });
});

describe('hashSecret', () => {
  const pepper = 'a-pepper-long-enough-for-tests';

  it('gives the same hash for the same pepper and secret', () => {
    const { secret } = generateSecret('live');
    expect(hashSecret(pepper, secret)).toBe(hashSecret(pepper, secret));
  });

  it('gives a different hash under a different pepper', () => {
    const { secret } = generateSecret('live');
    expect(hashSecret(pepper, secret)).not.toBe(hashSecret(`${pepper}!`, secret));
  });

  it('gives different hashes for different secrets', () => {
    const a = generateSecret('live').secret;
    const b = generateSecret('live').secret;
    expect(hashSecret(pepper, a)).not.toBe(hashSecret(pepper, b));
  });

  it('never equals or contains the secret', () => {
    const { secret, prefix } = generateSecret('live');
    const hash = hashSecret(pepper, secret);
    expect(hash).not.toBe(secret);
    expect(hash).not.toContain(secret);
    expect(hash).not.toContain(prefix);
  });

  it('is not a plain unpeppered digest of the secret', () => {
    const { secret } = generateSecret('live');
    expect(hashSecret('', secret)).not.toBe(hashSecret(pepper, secret));
  });
});

describe('safeEqual', () => {
  it('is true for equal strings', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('', '')).toBe(true);
  });

  it('is false for strings differing in one character', () => {
    expect(safeEqual('abcdef', 'abcdeF')).toBe(false);
  });

  it('is false for strings of different lengths, including a prefix of the other', () => {
    expect(safeEqual('abc', 'abcd')).toBe(false);
    expect(safeEqual('abcd', 'abc')).toBe(false);
    expect(safeEqual('', 'a')).toBe(false);
  });

  it('compares the full string, not only a leading part', () => {
    const long = 'x'.repeat(1000);
    expect(safeEqual(`${long}a`, `${long}b`)).toBe(false);
  });
});
