package dev.collie.core.dist;

/** How {@link Communicator#allReduce} and {@link Communicator#reduceScatter} combine the ranks' values. */
public enum ReduceOp {
    /** Element-wise sum over ranks. */
    SUM,
    /** Element-wise sum over ranks divided by the number of ranks. */
    AVG,
    /** Element-wise maximum over ranks. */
    MAX
}
