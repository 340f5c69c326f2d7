import { describe, expect, it } from 'vitest';
import {
  AddressNotAllowedError,
  checkTarget,
  createAddressPolicy,
  parseAllowedNetworks,
  UnresolvableHostError,
} from '../../src/webhooks/addressPolicy.js';
import { signatureHeader, verifySignature } from '../../src/webhooks/signature.js';

describe('webhook address policy', () => {
  const policy = createAddressPolicy();

  it.each([
    ['10.0.0.1', 'private'],
    ['172.16.5.4', 'private'],
    ['192.168.0.1', 'private'],
    ['127.0.0.1', 'loopback'],
    ['169.254.169.254', 'linkLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['0.0.0.0', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['224.0.0.1', 'multicast'],
    ['192.0.2.1', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'linkLocal'],
    ['fc00::1', 'uniqueLocal'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['64:ff9b::a00:1', 'rfc6052'],
    ['2002:a00:1::', '6to4'],
    ['2001:0:4136:e378::1', 'teredo'],
    ['2001:db8::1', 'reserved'],
  ])('refuses %s (%s)', (address, range) => {
    expect(policy.refusal(address)).toContain(range);
  });

  it.each(['93.184.215.14', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('allows %s', (address) => {
    expect(policy.refusal(address)).toBeNull();
  });

  it('the operator allowlist admits exactly what it names', () => {
    const allowing = createAddressPolicy(parseAllowedNetworks('127.0.0.1/32, 10.20.0.0/16,::1'));
    expect(allowing.refusal('127.0.0.1')).toBeNull();
    expect(allowing.refusal('::ffff:127.0.0.1')).toBeNull();
    expect(allowing.refusal('10.20.3.4')).toBeNull();
    expect(allowing.refusal('::1')).toBeNull();
    expect(allowing.refusal('127.0.0.2')).toContain('loopback');
    expect(allowing.refusal('10.21.0.1')).toContain('private');
    expect(() => parseAllowedNetworks('10.0.0.0/33')).toThrow(/not an address or CIDR/);
    expect(() => parseAllowedNetworks('localhost')).toThrow(/not an address or CIDR/);
  });

  it('checks every address a name resolves to, and refuses names that do not resolve', async () => {
    const resolver = {
      resolve: async (host: string) => {
        if (host === 'mixed.test') return ['93.184.215.14', '10.0.0.1'];
        if (host === 'public.test') return ['93.184.215.14'];
        throw new Error('ENOTFOUND');
      },
    };
    await expect(checkTarget(new URL('https://mixed.test/x'), policy, resolver)).rejects.toBeInstanceOf(
      AddressNotAllowedError,
    );
    await expect(checkTarget(new URL('https://public.test/x'), policy, resolver)).resolves.toBeUndefined();
    await expect(checkTarget(new URL('https://nowhere.test/x'), policy, resolver)).rejects.toBeInstanceOf(
      UnresolvableHostError,
    );
    await expect(checkTarget(new URL('http://[::1]:8080/x'), policy, resolver)).rejects.toBeInstanceOf(
      AddressNotAllowedError,
    );
  });
});

describe('webhook signatures', () => {
  it('sign t.body with every secret; any one verifies, within the tolerance only', () => {
    const body = '{"id":"evt_1"}';
    const header = signatureHeader(['whsec_new', 'whsec_old'], 1_700_000_000, body);
    expect(header).toMatch(/^t=1700000000,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
    for (const secret of ['whsec_new', 'whsec_old']) {
      expect(verifySignature(header, body, secret, { nowSeconds: 1_700_000_100 })).toBe(true);
    }
    expect(verifySignature(header, body, 'whsec_other', { nowSeconds: 1_700_000_100 })).toBe(false);
    expect(verifySignature(header, `${body}x`, 'whsec_new', { nowSeconds: 1_700_000_100 })).toBe(false);
    expect(verifySignature(header, body, 'whsec_new', { nowSeconds: 1_700_000_301 })).toBe(false);
    expect(() => signatureHeader([], 1, body)).toThrow(/at least one/);
  });
});
