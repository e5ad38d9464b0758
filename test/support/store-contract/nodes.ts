// The store contract: node reports.
import { describe, expect, it } from 'vitest';
import type { NodeReport } from '../../../src/store/types.js';
import type { ContractContext } from './harness.js';
import { byId, uniqueId } from './records.js';

export function nodesContract({ openStore }: ContractContext): void {
  describe('nodes', () => {
    it('lists the latest report of each node', async () => {
      const store = await openStore();
      const gw = uniqueId('gw');
      const admin = uniqueId('admin');
      // Recent reports: a store may stop listing nodes that have not reported for a long time.
      const now = Date.now();
      const first: NodeReport = { id: gw, role: 'gateway', appliedVersion: 1, reportedAt: new Date(now - 2_000).toISOString() };
      const adminReport: NodeReport = { id: admin, role: 'admin', appliedVersion: 2, reportedAt: new Date(now - 1_000).toISOString() };
      const latest: NodeReport = { id: gw, role: 'gateway', appliedVersion: 3, reportedAt: new Date(now).toISOString() };
      await store.reportNode(first);
      await store.reportNode(adminReport);
      expect(byId(await store.listNodes())).toEqual(byId([first, adminReport]));
      await store.reportNode(latest);
      expect(byId(await store.listNodes())).toEqual(byId([latest, adminReport]));
      expect(await store.currentVersion()).toBe(0);
    });

    it('stops listing a node whose last report is older than 15 s, and lists it again when it reports (regression: dead nodes stayed listed)', async () => {
      const store = await openStore();
      const live = uniqueId('gw-live');
      const dead = uniqueId('gw-dead');
      const now = Date.now();
      const liveReport: NodeReport = { id: live, role: 'gateway', appliedVersion: 1, reportedAt: new Date(now - 10_000).toISOString() };
      await store.reportNode(liveReport);
      await store.reportNode({ id: dead, role: 'gateway', appliedVersion: 1, reportedAt: new Date(now - 16_000).toISOString() });
      expect(byId(await store.listNodes())).toEqual(byId([liveReport]));
      const back: NodeReport = { id: dead, role: 'gateway', appliedVersion: 2, reportedAt: new Date().toISOString() };
      await store.reportNode(back);
      expect(byId(await store.listNodes())).toEqual(byId([liveReport, back]));
    });

    it('drops a node at once on forgetNode; forgetting an unknown node is no error', async () => {
      const store = await openStore();
      const gone = uniqueId('gw-gone');
      const kept = uniqueId('gw-kept');
      const keptReport: NodeReport = { id: kept, role: 'gateway', appliedVersion: 1, reportedAt: new Date().toISOString() };
      await store.reportNode({ id: gone, role: 'gateway', appliedVersion: 1, reportedAt: new Date().toISOString() });
      await store.reportNode(keptReport);
      await store.forgetNode(gone);
      await store.forgetNode(uniqueId('gw-never'));
      expect(byId(await store.listNodes())).toEqual(byId([keptReport]));
    });
  });
}
