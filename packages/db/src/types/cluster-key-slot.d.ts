/** The CRC16 key-slot function ioredis itself uses (the package ships no types). */
declare module 'cluster-key-slot' {
  /** The cluster slot (0..16383) of a key, honouring `{hash tags}`. */
  function calculateSlot(key: string | Buffer): number;
  namespace calculateSlot {
    /** The common slot of the keys, or -1 when they do not all hash to one slot. */
    function generateMulti(keys: (string | Buffer)[]): number;
  }
  export default calculateSlot;
}
