/* An empty preload library: what the loader charges for preloading any
 * library at all, the baseline of the shim's process-start row. */
int sg_bench_empty;
