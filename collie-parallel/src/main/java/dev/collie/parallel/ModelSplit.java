package dev.collie.parallel;

import dev.collie.core.Scope;
import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ReduceOp;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.FusedBackwardOptimizer;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.train.Distributed;
import dev.collie.core.train.LanguageModel;
import dev.collie.core.train.MicroBatchRunner;
import dev.collie.core.train.StepRunner;
import dev.collie.parallel.pp.OneFOneBSchedule;
import dev.collie.parallel.pp.PipelineStage;
import dev.collie.parallel.tp.TensorParallel;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.IntFunction;

/**
 * The Trainer's view of a model split over ranks (tensor and/or pipeline parallel): the model's side here, the
 * replicas' side from the data-parallel reduction.
 */
final class ModelSplit implements Distributed {
    /**
     * What the view reads of its {@link Parallelism}: the layout and this rank's place in it, the data-parallel side,
     * the communicators, the model and stage, and the names each stage holds first ({@code firstHeld}).
     */
    record Parts(Topology topology, int rank, Distributed sync, Communicator world, Communicator mpComm,
                 Communicator ppComm, LanguageModel model, PipelineStage stage, int zero, boolean gathersLayers,
                 Map<String, Parameter> trainable, Map<String, Parameter> optimizerParams,
                 IntFunction<Set<String>> firstHeld) {
    }

    private final Parts par;
    private final Topology topology;
    private final int rank;
    private final Distributed sync;
    private final Communicator mpComm;
    private final PipelineStage stage;
    private final int zero;
    private final Map<String, Parameter> trainable;
    private final Map<String, Parameter> optimizerParams;
    /** The schedule of the last runner made (pipeline parallel): it sums the weights stages share. */
    private OneFOneBSchedule schedule;

    ModelSplit(Parts par) {
        this.par = par;
        this.topology = par.topology();
        this.rank = par.rank();
        this.sync = par.sync();
        this.mpComm = par.mpComm();
        this.stage = par.stage();
        this.zero = par.zero();
        this.trainable = par.trainable();
        this.optimizerParams = par.optimizerParams();
    }

    @Override
    public int replicaRank() {
        return sync.replicaRank();
    }

    @Override
    public int replicas() {
        return sync.replicas();
    }

    @Override
    public int modelRank() {
        return mpComm.rank();
    }

    @Override
    public int modelRanks() {
        return mpComm.size();
    }

    @Override
    public boolean splitsModel() {
        return true;
    }

    /** Replica 0's tensor-parallel rank 0 of the first stage. */
    @Override
    public boolean isLeadRank() {
        return sync.replicaRank() == 0 && topology.tpRank(rank) == 0 && topology.ppRank(rank) == 0;
    }

    @Override
    public void modelBarrier() {
        mpComm.barrier();
    }

    @Override
    public Collection<Parameter> routedParameters() {
        return sync.routedParameters();
    }

    @Override
    public Reduction reduction() {
        return sync.reduction();
    }

    @Override
    public Collection<Parameter> sharedAcrossStages() {
        return schedule != null ? schedule.sharedParameters() : List.of();
    }

    @Override
    public void sumSharedGradients() {
        if (schedule != null) {
            schedule.syncTiedGradients();
        }
    }

    @Override
    public boolean requiresSingleStream() {
        return sync.requiresSingleStream();
    }

    @Override
    public boolean splitsParameters() {
        return sync.splitsParameters();
    }

    @Override
    public boolean shardsOptimizerState() {
        return sync.shardsOptimizerState();
    }

    @Override
    public boolean shardsGradients() {
        return sync.shardsGradients();
    }

    /** Bytes this rank has sent summing the weights pipeline stages share (0 before a pipeline runner is made). */
    long sharedGradientBytesSent() {
        return schedule != null ? schedule.sharedGradientBytesSent() : 0;
    }

    @Override
    public MicroBatchRunner runner(LanguageModel m, int workers, int cores) {
        if (stage != null) {
            schedule = new OneFOneBSchedule(stage, par.model(), par.ppComm());
            return schedule;
        }
        // collectives inside forward and backward (tensor parallel, ZeRO-3 gathers) run on one thread per rank
        boolean oneStream = topology.tp() > 1 || par.gathersLayers();
        return new StepRunner(par.model(), oneStream ? 1 : workers, cores);
    }

    @Override
    public void finishReduction() {
        sync.finishReduction();
    }

    @Override
    public List<Parameter> gradientHolders(LanguageModel m, Optimizer optimizer) {
        // ZeRO-2: the gradients this replica holds are its optimizer's (row blocks of split parameters)
        return new ArrayList<>(zero >= 2 ? optimizerParams.values() : trainable.values());
    }

    /**
     * Each parameter counted once over the model's ranks ({@link #countsHere}), the squares summed over them;
     * over the data-parallel ranks too under ZeRO-2/3, where each gradient lives on its owner only.
     */
    @Override
    public double gradNorm(List<Parameter> held) {
        double sq = 0;
        for (Map.Entry<String, Parameter> e : (zero >= 2 ? optimizerParams : trainable).entrySet()) {
            INDArray g = e.getValue().grad();
            if (g == null || !countsHere(e.getKey(), trainable.get(e.getKey()))) {
                continue;
            }
            double n = g.norm2Number().doubleValue();
            sq += n * n;
        }
        INDArray a = Nd4j.createFromArray(new double[] {sq});
        (zero >= 2 ? par.world() : mpComm).allReduce(a, ReduceOp.SUM);
        return Math.sqrt(a.getDouble(0));
    }

    @Override
    public double average(double value) {
        return sync.average(value);
    }

    /** Over the whole world: the ranks of every replica and every part of the model stop at the same step. */
    @Override
    public boolean anyRank(boolean flag) {
        INDArray a = Nd4j.createFromArray(new double[] {flag ? 1 : 0});
        par.world().allReduce(a, ReduceOp.MAX);
        return a.getDouble(0) > 0;
    }

    @Override
    public void afterStep() {
        sync.afterStep();
    }

    @Override
    public Scope gatherParameters() {
        return sync.gatherParameters();
    }

    @Override
    public Map<String, Parameter> heldParameters(LanguageModel m) {
        return stage == null ? par.model().module().namedParameters() : stage.parameters();
    }

    /**
     * A fused-backward optimizer (LOMO, AdaLomo) gets the rules of {@link #gradNorm} for its two-pass clipping
     * norm (each parameter counted once over the model's ranks, the squares summed over them; over the
     * data-parallel ranks too when ZeRO gives each its own parameters).
     */
    @Override
    public void attach(Optimizer optimizer) {
        if (!(optimizer instanceof FusedBackwardOptimizer f)) {
            return;
        }
        Set<Parameter> counted = Collections.newSetFromMap(new IdentityHashMap<>());
        trainable.forEach((name, p) -> {
            if (countsHere(name, p)) {
                counted.add(p);
            }
        });
        Communicator over = zero >= 1 ? par.world() : mpComm;
        f.setGradNormReducer(new FusedBackwardOptimizer.GradNormReducer() {
            @Override
            public boolean counts(Parameter p) {
                return counted.contains(p);
            }

            @Override
            public double reduce(double localSquared) {
                INDArray a = Nd4j.createFromArray(new double[] {localSquared});
                over.allReduce(a, ReduceOp.SUM);
                return a.getDouble(0);
            }
        });
    }

    /** A parameter replicated over tensor-parallel ranks counts on rank 0 only; a tied copy on its first stage only. */
    private boolean countsHere(String name, Parameter p) {
        if (topology.tp() > 1 && topology.tpRank(rank) != 0 && !TensorParallel.isSharded(p)) {
            return false;
        }
        return stage == null || par.firstHeld().apply(topology.ppRank(rank)).contains(name);
    }
}
