// The behaviour every KeyStore backend must have, as one suite each backend runs against its
// own factory (test code: the build never compiles test/). Each part covers one concern.
import { describe } from 'vitest';
import { activityContract } from './activity.js';
import { adminContract } from './admin.js';
import { changeFeedContract } from './change-feed.js';
import { commitContract } from './commit.js';
import { contractContext, type StoreFactory } from './harness.js';
import { keysContract } from './keys.js';
import { nodesContract } from './nodes.js';
import { readsContract } from './reads.js';
import { transferContract } from './transfer.js';
import { usageContract } from './usage.js';

export type { StoreFactory } from './harness.js';
export { audit, deleteKey, group, keyRecord, owner, putKey, signingKey, T0, timeless, uniqueId, waitFor, withoutSeq, workspace } from './records.js';

export function storeContract(name: string, factory: StoreFactory): void {
  describe(`store contract: ${name}`, () => {
    const context = contractContext(factory);
    commitContract(context);
    readsContract(context);
    keysContract(context);
    changeFeedContract(context);
    usageContract(context);
    activityContract(context);
    nodesContract(context);
    transferContract(context);
    adminContract(context);
  });
}
