import { describe, expect, it } from 'vitest';
import {
  type GuardianshipCommand,
  guardianshipDecider,
  isGuardianOf,
  MAX_GUARDIANS_PER_STUDENT,
  MAX_GUARDIANSHIP_EVENTS,
} from '../../src/domain/guardianship.js';
import { foldEvents, history, spec } from './spec.js';

const ADMIN = { id: 'adm_1', role: 'tenant_admin' };
const link = (guardianId: string, studentId = 's1'): GuardianshipCommand => ({
  type: 'LinkGuardian',
  studentId,
  guardianId,
  actor: ADMIN,
  linkedAt: '2026-12-04T10:00:00.000Z',
});
const unlink = (guardianId: string): GuardianshipCommand => ({
  type: 'UnlinkGuardian',
  studentId: 's1',
  guardianId,
  actor: ADMIN,
  unlinkedAt: '2026-12-05T10:00:00.000Z',
});

describe('guardianship', () => {
  it('links a guardian once; linking again changes nothing; unlinking ends it', () => {
    spec(guardianshipDecider)
      .given([])
      .when(link('g1'))
      .thenEmits([
        {
          type: 'GuardianLinked',
          data: { studentId: 's1', guardianId: 'g1', actor: ADMIN, linkedAt: '2026-12-04T10:00:00.000Z' },
        },
      ]);
    const linked = history(guardianshipDecider, [link('g1')]);
    spec(guardianshipDecider).given(linked).when(link('g1')).thenEmits([]);
    expect(isGuardianOf(foldEvents(guardianshipDecider, linked), 'g1')).toBe(true);
    const unlinked = history(guardianshipDecider, [link('g1'), unlink('g1')]);
    expect(isGuardianOf(foldEvents(guardianshipDecider, unlinked), 'g1')).toBe(false);
    spec(guardianshipDecider).given(unlinked).when(unlink('g1')).thenFails('not_found');
    spec(guardianshipDecider)
      .given(unlinked)
      .when(link('g1'))
      .thenEmits(() => {});
  });

  it('refuses the student as their own guardian, another student, bad ids, and more than the bounds', () => {
    spec(guardianshipDecider)
      .given([])
      .when(link('s1'))
      .thenFails('validation_failed', /own guardian/);
    spec(guardianshipDecider)
      .given(history(guardianshipDecider, [link('g1')]))
      .when(link('g2', 's2'))
      .thenFails('validation_failed', /sent to the guardians of s1/);
    spec(guardianshipDecider)
      .given([])
      .when(link('bad id!'))
      .thenFails('validation_failed', /guardianId/);
    const full = history(
      guardianshipDecider,
      Array.from({ length: MAX_GUARDIANS_PER_STUDENT }, (_, i) => link(`g${i}`)),
    );
    spec(guardianshipDecider).given(full).when(link('one_more')).thenFails('limit_exceeded');
    const churned = history(
      guardianshipDecider,
      Array.from({ length: MAX_GUARDIANSHIP_EVENTS }, (_, i) => (i % 2 === 0 ? link('g') : unlink('g'))),
    );
    spec(guardianshipDecider).given(churned).when(link('g')).thenFails('limit_exceeded');
  });
});
