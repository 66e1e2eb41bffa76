package dev.collie.core.train;

import dev.collie.core.Scope;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.GradClip;
import dev.collie.core.optim.Optimizer;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Collection;
import java.util.List;
import java.util.Map;

/**
 * How this rank takes part in a run: the one thing the {@link Trainer} asks about parallelism. {@link #SINGLE}
 * (every default) is one process holding the whole model; collie-parallel's data-parallel reductions
 * ({@code DataParallel}, {@code Zero1..3}) override the replica side, and its {@code Parallelism} the model split
 * as well. The gradients' way from backward to the optimizer is composed from it once, by {@link GradientRoute}.
 */
public interface Distributed {
    /** One process, the whole model, nothing to reduce. */
    Distributed SINGLE = new Distributed() { };

    // ---- where this rank stands

    /** This rank's index among the {@link #replicas()} data-parallel replicas (its share of every global batch). */
    default int replicaRank() {
        return 0;
    }

    /** Data-parallel replicas. */
    default int replicas() {
        return 1;
    }

    /** This rank's index among the {@link #modelRanks()} ranks that hold one copy of the model between them. */
    default int modelRank() {
        return 0;
    }

    /** Ranks that hold one copy of the model between them (tensor × pipeline parallel size). */
    default int modelRanks() {
        return 1;
    }

    /** Whether the model is split over {@link #modelRanks()} ranks (so each holds and saves only its part). */
    default boolean splitsModel() {
        return modelRanks() > 1;
    }

    /** Whether this rank speaks for the run (logs, files): replica 0, and the model's first rank. */
    default boolean isLeadRank() {
        return replicaRank() == 0 && modelRank() == 0;
    }

    /** Returns once every rank holding this copy of the model has entered it. */
    default void modelBarrier() {
    }

    // ---- the gradient route (GradientRoute composes it)

    /** The trainable parameters whose gradients this rank reduces, or null: the optimizer's parameters. */
    default Collection<Parameter> routedParameters() {
        return null;
    }

    /** What happens to a complete gradient between backward and the optimizer: nothing here. */
    default Reduction reduction() {
        return null;
    }

    /**
     * Trainable weights this rank shares with ranks of other pipeline stages (a tied embedding and head, a prefix
     * encoder): their gradient is complete only once {@link #sumSharedGradients()} added the stages' parts.
     */
    default Collection<Parameter> sharedAcrossStages() {
        return List.of();
    }

    /** Sums the gradients of {@link #sharedAcrossStages()} over the stages holding them (after backward). */
    default void sumSharedGradients() {
    }

    /** Whether forward and backward must run on one thread (collectives inside them: tensor parallel, ZeRO-3). */
    default boolean requiresSingleStream() {
        return false;
    }

    /**
     * Whether some trainable parameters are split into row blocks over the replicas (ZeRO-2/3 balancing), so no
     * rank updates them whole.
     */
    default boolean splitsParameters() {
        return false;
    }

    /** Whether each replica's optimizer holds a different shard of the state (ZeRO); checkpoints then keep all. */
    default boolean shardsOptimizerState() {
        return false;
    }

    /**
     * Whether a replica holds only its owned parameters' gradients after the reduction (ZeRO-2/3), so that
     * gradients leave backward for their owners.
     */
    default boolean shardsGradients() {
        return false;
    }

    /**
     * Called once with the optimizer that trains this rank's part, when its route is composed: what the optimizer
     * needs from the split goes in here (a fused optimizer's two-pass gradient norm summed over the ranks).
     */
    default void attach(Optimizer optimizer) {
    }

    // ---- the step

    /** The runner of a step's forward and backward on this rank, with {@code workers} threads on {@code cores} cores. */
    default MicroBatchRunner runner(LanguageModel model, int workers, int cores) {
        return new StepRunner(model, workers, cores);
    }

    /** Waits until every gradient of the step is reduced across the replicas (step-style optimizers). */
    default void finishReduction() {
    }

    /**
     * The parameters whose gradients this rank holds once backward and the reductions are done (what it clips
     * and clears): the model's trainable parameters here.
     */
    default List<Parameter> gradientHolders(LanguageModel model, Optimizer optimizer) {
        return model.module().trainableParameters();
    }

    /** The L2 norm of the whole model's gradient, from {@code held}, this rank's {@link #gradientHolders}. */
    default double gradNorm(List<Parameter> held) {
        return GradClip.globalNorm(held);
    }

    /** The mean of {@code value} over the replicas (e.g. the step's loss); every rank calls it at the same point. */
    default double average(double value) {
        return value;
    }

    /**
     * Whether {@code flag} is true on any rank of the job (e.g. a stop request that reached some ranks first), so
     * that all ranks act on it at the same step; a collective: every rank calls it at the same point.
     */
    default boolean anyRank(boolean flag) {
        return flag;
    }

    /** After the optimizer step: ZeRO shares each owner's updated parameters here. */
    default void afterStep() {
    }

    /** Makes every parameter's whole value present on this rank until the scope closes (ZeRO-3); a collective. */
    default Scope gatherParameters() {
        return Scope.NONE;
    }

    /** Every parameter this rank holds, frozen ones too, by Hugging Face name (what its checkpoint part stores). */
    default Map<String, Parameter> heldParameters(LanguageModel model) {
        return model.module().namedParameters();
    }

    /** What a data-parallel rank does with one complete gradient. */
    interface Reduction {
        /**
         * Step-style optimizers: takes {@code grad} (valid for this call only) into the step's reduction, which
         * {@link Distributed#finishReduction()} completes; returns whether {@code p} keeps {@code grad} until then.
         */
        boolean launch(Parameter p, INDArray grad);

        /**
         * Fused-backward optimizers: averages {@code grad} over the replicas in place before returning. Every
         * replica calls it for the same parameters in the same order (one backward stream per replica).
         */
        void reduceNow(Parameter p, INDArray grad);
    }
}
