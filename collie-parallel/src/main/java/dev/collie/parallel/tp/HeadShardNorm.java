package dev.collie.parallel.tp;

import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ReduceOp;
import dev.collie.core.nn.RMSNorm;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A per-head norm (Qwen3's {@code q_norm}, {@code k_norm}) on a tensor-parallel rank's share of the heads: the
 * weight is whole on every rank, but each rank's gradient covers only its heads, so it is summed over the ranks
 * before it is accumulated (every rank then holds the one-rank gradient and takes the same step).
 */
final class HeadShardNorm extends RMSNorm {
    private final Communicator tp;

    HeadShardNorm(RMSNorm norm, Communicator tp) {
        super(norm);
        this.tp = tp;
    }

    @Override
    protected INDArray weightGradient(INDArray g) {
        INDArray sum = g.dup();
        tp.allReduce(sum, ReduceOp.SUM);
        return sum;
    }
}
