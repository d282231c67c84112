// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- the package ships no types; this declares them for every package that compiles the store
/// <reference path="./types/cluster-key-slot.d.ts" />
/**
 * Redis Cluster key slots, computed by `cluster-key-slot` (the CRC16 package ioredis itself uses
 * to route commands, so the store and its client always agree on a key's slot).
 */
import calculateSlot from 'cluster-key-slot';

/** The cluster slot (0..16383) of a key, honouring `{hash tags}`. */
export const slotOf = (key: string | Buffer): number => calculateSlot(key);

/** The common slot of the keys, or -1 when they do not all hash to one slot. */
export const commonSlot = (keys: (string | Buffer)[]): number => calculateSlot.generateMulti(keys);
