package dev.collie.parallel;

import dev.collie.core.CollieException;
import dev.collie.core.Scope;
import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ParallelStyle;
import dev.collie.core.io.HfWeights;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.Optimizer;
import dev.collie.core.train.Distributed;
import dev.collie.core.train.LanguageModel;
import dev.collie.core.train.Trainer;
import dev.collie.parallel.dp.DataParallel;
import dev.collie.parallel.dp.RankMemory;
import dev.collie.parallel.dp.ReducerSync;
import dev.collie.parallel.dp.Zero1;
import dev.collie.parallel.dp.Zero2;
import dev.collie.parallel.dp.Zero3;
import dev.collie.parallel.pp.PipelinePartition;
import dev.collie.parallel.pp.PipelineStage;
import dev.collie.parallel.tp.TensorParallel;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Data, tensor and pipeline parallelism for one rank, switched on with three numbers. Every rank of the
 * world builds the same model (same seed, or the same checkpoint) and calls {@link Builder#build}; it gets
 * back its tensor-parallel shard of its pipeline stage, the parameters its optimizer should hold, and the
 * pieces the {@link Trainer} needs:
 * <pre>{@code
 * Parallelism par = Parallelism.builder().dp(2).tp(2).pp(2).zero(1).build(world, model);
 * Optimizer opt = new AdamW(par.optimizerParameters());
 * par.configure(Trainer.builder()).optimizer(opt).config(config).trainData(data).build().train();
 * Map<String, INDArray> full = par.gatherFullWeights();   // on the lead rank: the whole model, HF names
 * }</pre>
 * Ranks are laid out as Megatron does (tensor-parallel innermost, then data, pipeline outermost; see
 * {@link Topology}); each rank's data-parallel coordinate decides its share of every global batch.
 */
public final class Parallelism implements AutoCloseable {
    private final Topology topology;
    private final Communicator world;
    private final int rank;
    private final int zero;
    private final Communicator tpComm;
    private final Communicator dpComm;
    private final Communicator ppComm;
    private final Communicator mpComm;
    private final LanguageModel model;
    private final PipelineStage stage;
    private final int[] bounds;
    private final Map<String, Parameter> trainable;
    private final Map<String, Parameter> optimizerParams;
    /** The data-parallel side: a reduction over the replicas, or {@link Distributed#SINGLE} with one. */
    private final Distributed sync;
    private final Zero3 zero3;
    private final ModelSplit split;

    /** Sizes and options; {@link #build} applies them. */
    public static final class Builder {
        private int dp = 1;
        private int tp = 1;
        private int pp = 1;
        private int zero;
        private String partition = "parameters";
        private boolean splitLarge = true;

        public Builder dp(int n) { this.dp = n; return this; }
        public Builder tp(int n) { this.tp = n; return this; }
        public Builder pp(int n) { this.pp = n; return this; }
        /** ZeRO stage 0–3 over the data-parallel ranks. */
        public Builder zero(int stage) { this.zero = stage; return this; }
        /** How the layers are cut into stages: {@code parameters}, {@code uniform} or {@code type:REGEX}. */
        public Builder partition(String method) { this.partition = method; return this; }
        /**
         * ZeRO-2/3: split parameters too large to balance into row blocks across the replicas (default on).
         * Turn it off for optimizers that update inside backward (LOMO, AdaLomo), which need whole parameters.
         */
        public Builder splitLargeParameters(boolean on) { this.splitLarge = on; return this; }

        /** Every trainable parameter of {@code model} takes part. */
        public Parallelism build(Communicator world, LanguageModel model) {
            return build(world, model, null);
        }

        /**
         * Splits {@code model} for this rank of {@code world}; {@code trainable} (HF names; null = every
         * trainable parameter) is what the optimizer may train, e.g. only a LoRA adapter.
         *
         * @throws CollieException when the sizes do not fit the world or the model, naming the numbers
         */
        public Parallelism build(Communicator world, LanguageModel model, Map<String, Parameter> trainable) {
            return new Parallelism(this, world, model, trainable);
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    private Parallelism(Builder b, Communicator world, LanguageModel full, Map<String, Parameter> trainableIn) {
        if (b.zero < 0 || b.zero > 3) {
            throw new CollieException("zero stage " + b.zero + ": expected 0, 1, 2 or 3");
        }
        this.topology = Topology.of(world.size(), b.dp, b.tp, b.pp);
        this.world = world;
        this.rank = world.rank();
        this.zero = b.dp > 1 ? b.zero : 0;
        if (b.zero > 0 && b.dp == 1) {
            throw new CollieException("zero stage " + b.zero + " shards over data-parallel ranks, but dp_size is 1");
        }
        if (b.zero == 3 && b.pp > 1) {
            throw new CollieException("zero stage 3 gathers each layer's parameters around its use and cannot be"
                    + " combined with pipeline parallelism (as in DeepSpeed); with pp_size > 1 use stage 0, 1 or 2");
        }
        this.tpComm = world.subGroup(topology.tpGroup(rank));
        this.dpComm = world.subGroup(topology.dpGroup(rank));
        this.ppComm = world.subGroup(topology.ppGroup(rank));
        this.mpComm = world.subGroup(modelGroup());
        // every rank starts from world rank 0's weights, whatever its seed did
        if (world.size() > 1) {
            for (Parameter p : full.module().parameters()) {
                world.broadcast(p.data(), 0);
            }
        }
        Map<String, Parameter> wanted = new LinkedHashMap<>();
        (trainableIn != null ? trainableIn : full.module().namedParameters()).forEach((n, p) -> {
            if (p.requiresGrad()) {
                wanted.put(n, p);
            }
        });
        // tensor parallel replaces modules (and so parameters): find the wanted ones again by name afterwards
        this.model = topology.tp() > 1 ? TensorParallel.apply(full, tpComm) : full;
        Map<String, Parameter> named = model.module().namedParameters();
        if (topology.pp() > 1) {
            this.bounds = PipelinePartition.bounds(model.pipelineLayers(), topology.pp(), b.partition);
            this.stage = new PipelineStage(model, bounds, topology.ppRank(rank));
        } else {
            this.bounds = null;
            this.stage = null;
        }
        if (stage != null && zero >= 2) {
            // a trainable weight held by several stages (a tied embedding and head, a prefix encoder)
            Map<String, Integer> holders = new LinkedHashMap<>();
            for (int s = 0; s < topology.pp(); s++) {
                stage.parametersOf(s).forEach((n, p) -> {
                    if (wanted.containsKey(n)) {
                        holders.merge(n, 1, Integer::sum);
                    }
                });
            }
            List<String> shared = new ArrayList<>();
            holders.forEach((n, c) -> {
                if (c > 1) {
                    shared.add(n);
                }
            });
            if (!shared.isEmpty()) {
                throw new CollieException("zero stage " + zero + " with pipeline parallelism cannot train " + shared
                        + ", which several pipeline stages hold (tie_word_embeddings, or a prefix-tuning encoder that"
                        + " every stage uses): its gradient must be summed over those stages, but ZeRO-" + zero
                        + " leaves each stage's share on a different data-parallel rank; use zero stage 0 or 1 (or, for"
                        + " a tied embedding, an untied model)");
            }
        }
        Set<Parameter> held = Collections.newSetFromMap(new IdentityHashMap<>());
        held.addAll(stage != null ? stage.parameters().values() : model.module().parameters());
        this.trainable = new LinkedHashMap<>();
        for (String n : wanted.keySet()) {
            Parameter p = named.get(n);
            if (p != null && held.contains(p) && !trainable.containsValue(p)) {
                trainable.put(n, p);
            }
        }
        Zero3 z3 = null;
        if (topology.dp() == 1) {
            this.sync = Distributed.SINGLE;
            this.optimizerParams = trainable;
        } else if (zero == 0) {
            this.sync = new DataParallel(trainable, dpComm);
            this.optimizerParams = trainable;
        } else if (zero == 1) {
            Zero1 z = new Zero1(trainable, dpComm);
            this.sync = z;
            this.optimizerParams = z.ownedParameters();
        } else if (zero == 2) {
            Zero2 z = new Zero2(trainable, dpComm, DataParallel.DEFAULT_BUCKET_BYTES, b.splitLarge);
            this.sync = z;
            this.optimizerParams = z.ownedParameters();
        } else {
            z3 = new Zero3(model, dpComm, DataParallel.DEFAULT_BUCKET_BYTES, b.splitLarge);
            this.sync = z3;
            this.optimizerParams = z3.ownedParameters();
        }
        this.zero3 = z3;
        this.split = topology.tp() > 1 || topology.pp() > 1 ? new ModelSplit(new ModelSplit.Parts(topology, rank, sync, world,
                mpComm, ppComm, model, stage, zero, z3 != null, trainableParameters(), optimizerParameters(), this::firstHeld)) : null;
        if (stage != null) {
            releaseOtherStages();
        }
    }

    /**
     * Drops the values of the parameters that only other stages' layers use: every rank built the whole model,
     * but a stage keeps only its own part in memory (names and shapes stay, for the partition's bookkeeping).
     */
    private void releaseOtherStages() {
        Set<Parameter> mine = Collections.newSetFromMap(new IdentityHashMap<>());
        mine.addAll(stage.parameters().values());
        for (int s = 0; s < topology.pp(); s++) {
            if (s == topology.ppRank(rank)) {
                continue;
            }
            for (Parameter p : stage.parametersOf(s).values()) {
                if (!mine.contains(p) && p.isResident()) {
                    p.offload();
                }
            }
        }
    }

    /** The ranks with this rank's data-parallel coordinate: together they hold one whole model. */
    private int[] modelGroup() {
        int[] g = new int[topology.tp() * topology.pp()];
        int i = 0;
        for (int s = 0; s < topology.pp(); s++) {
            for (int t = 0; t < topology.tp(); t++) {
                g[i++] = topology.rankOf(topology.dpRank(rank), t, s);
            }
        }
        return g;
    }

    public Topology topology() {
        return topology;
    }

    /**
     * The data-parallel group of this rank: the replicas of its part of the model, e.g. for an evaluator that takes
     * its share of the examples and gathers (collie-models' {@code Evaluator.Builder.communicator}).
     */
    public Communicator dataParallelGroup() {
        return dpComm;
    }

    /** This rank's model: its tensor-parallel shard (the whole model without tensor parallelism). */
    public LanguageModel model() {
        return model;
    }

    /** The trainable parameters this rank holds (its stage's, its tensor-parallel shard), by HF name. */
    public Map<String, Parameter> trainableParameters() {
        return Collections.unmodifiableMap(trainable);
    }

    /** What this rank's optimizer should update: its trainable parameters, or under ZeRO its share of them. */
    public Map<String, Parameter> optimizerParameters() {
        return Collections.unmodifiableMap(optimizerParams);
    }

    /**
     * How this rank takes part, for the {@link Trainer}: the data-parallel reduction alone when every rank holds the
     * whole model ({@link Distributed#SINGLE} with one replica), else the view of the model split over ranks.
     */
    public Distributed distributed() {
        return split != null ? split : sync;
    }

    /**
     * What this rank holds for its trainable parameters: values (ZeRO-3: only the owned ones between uses),
     * gradient buffers (ZeRO-2/3: only the owned ones between steps) and communication buffers. The optimizer's
     * state is {@code optimizer.stateBytes()}.
     */
    public RankMemory memory() {
        return sync instanceof ReducerSync r ? r.memory() : RankMemory.of(trainable.values(), 0);
    }

    /**
     * Loads this rank's part of a Hugging Face checkpoint: only the tensors of its pipeline stage are read,
     * and each split parameter takes its tensor-parallel slice. Every rank calls it (no communication).
     *
     * @throws CollieException naming the file when a tensor is missing or its shape does not fit
     */
    public void loadWeights(HfWeights weights) {
        // ZeRO-3: every value present while it is written; the owners keep theirs afterwards (a collective)
        try (Scope whole = zero3 != null ? zero3.gathered() : Scope.NONE) {
            loadHeld(weights);
        }
    }

    private void loadHeld(HfWeights weights) {
        Map<String, Parameter> held = stage != null ? stage.parameters() : model.module().namedParameters();
        int tpRank = topology.tpRank(rank);
        for (Map.Entry<String, Parameter> e : held.entrySet()) {
            String name = e.getKey();
            Parameter p = e.getValue();
            if (!weights.contains(name)) {
                throw new CollieException(weights.location() + ": tensor " + name + " is missing");
            }
            INDArray full = weights.loadWeight(name, p.dtype());
            ParallelStyle style = TensorParallel.styleOf(p);
            INDArray mine = style == ParallelStyle.REPLICATE ? full
                    : TensorParallel.shardOf(full, p.sharding(), tpRank, topology.tp());
            if (!Arrays.equals(mine.shape(), p.shape())) {
                throw new CollieException(weights.fileOf(name) + ": tensor " + name + " has shape "
                        + Arrays.toString(full.shape()) + ", which does not fit this model's "
                        + Arrays.toString(p.shape()) + (style == ParallelStyle.REPLICATE
                        ? "" : " (its tensor-parallel share of " + topology.tp() + ")"));
            }
            p.data().assign(mine);
            full.close();
            if (mine != full) {
                mine.close();
            }
        }
    }

    /**
     * Payload bytes this rank has sent so far over all its communicators: the world, its tensor-, data- and
     * pipeline-parallel groups, its model group and the groups summing weights that pipeline stages share. A
     * monitor's {@code comm_bytes} is the growth of this over a step.
     */
    public long bytesSent() {
        long n = 0;
        for (Communicator c : new Communicator[] {world, tpComm, dpComm, ppComm, mpComm}) {
            n += c.bytesSent();
        }
        return n + (split != null ? split.sharedGradientBytesSent() : 0);
    }

    /** Whether this rank reports and writes files (world rank 0). */
    public boolean isLeadRank() {
        return rank == 0;
    }

    /** Puts this rank's model and its {@link #distributed()} into {@code b}. */
    public Trainer.Builder configure(Trainer.Builder b) {
        return b.model(model).distributed(distributed());
    }

    /**
     * The whole model's weights in Hugging Face names and shapes, on the lead rank (null on the others):
     * tensor-parallel shards are gathered, pipeline stages send theirs to the lead rank, ZeRO-3 parameters
     * are gathered from their owners. A collective: every rank of the world must call it.
     */
    public Map<String, INDArray> gatherFullWeights() {
        try (Scope whole = zero3 != null ? zero3.gathered() : Scope.NONE) {
            Map<String, INDArray> mine = topology.tp() > 1 ? TensorParallel.gatherFullWeights(model, tpComm,
                    stage == null ? name -> true : stage.parameters()::containsKey)
                    : fullCopy(stage == null ? model.module().namedParameters() : stage.parameters(), zero3 != null);
            if (topology.pp() == 1) {
                return rank == 0 ? mine : null;
            }
            return gatherStages(mine);
        }
    }

    /** The parameters' values; copies of them when {@code copy} (ZeRO-3 releases the gathered arrays). */
    private static Map<String, INDArray> fullCopy(Map<String, Parameter> params, boolean copy) {
        Map<String, INDArray> out = new LinkedHashMap<>();
        params.forEach((n, p) -> out.put(n, copy ? p.data().dup() : p.data()));
        return out;
    }

    /**
     * Stage s > 0 sends the tensors it holds (tensor-parallel rank 0, data-parallel rank 0) to stage 0 in
     * name order; every rank knows every stage's names because every rank partitions the same model.
     */
    private Map<String, INDArray> gatherStages(Map<String, INDArray> mine) {
        boolean sender = topology.tpRank(rank) == 0 && topology.dpRank(rank) == 0;
        if (!sender) {
            return null;
        }
        int me = topology.ppRank(rank);
        Map<String, INDArray> out = rank == 0 ? new LinkedHashMap<>() : null;
        int tag = 0;    // one tag per tensor of stages 1.., in the same order on every sender
        for (int s = 0; s < topology.pp(); s++) {
            for (String name : firstHeld(s)) {
                if (s == 0) {
                    if (rank == 0) {
                        out.put(name, mine.get(name));
                    }
                    continue;
                }
                if (me == s) {
                    ppComm.send(mine.get(name), 0, tag);
                } else if (rank == 0) {
                    // that stage's parameter: this rank has its name, type and (sharded) shape, not its value
                    Parameter like = stage.parametersOf(s).get(name);
                    INDArray into = Nd4j.createUninitialized(like.dtype(), like.fullShape());
                    ppComm.recv(into, s, tag);
                    out.put(name, into);
                }
                tag++;
            }
        }
        return out;
    }

    private List<Set<String>> firstHeld;

    /**
     * The names of the parameters stage {@code s} holds and no earlier stage does (a weight tied across stages
     * belongs to the first), in the stage's order; computed once, as every rank partitions the same model.
     */
    private synchronized Set<String> firstHeld(int s) {
        if (firstHeld == null) {
            List<Set<String>> all = new ArrayList<>();
            Set<String> seen = new HashSet<>();
            for (int k = 0; k < topology.pp(); k++) {
                Set<String> mine = new LinkedHashSet<>();
                for (String n : stage.parametersOf(k).keySet()) {
                    if (seen.add(n)) {
                        mine.add(n);
                    }
                }
                all.add(mine);
            }
            firstHeld = all;
        }
        return firstHeld.get(s);
    }

    @Override
    public void close() {
        if (sync instanceof ReducerSync r) {
            r.close();
        }
    }
}
