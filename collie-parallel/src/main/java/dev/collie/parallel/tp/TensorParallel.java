package dev.collie.parallel.tp;

import dev.collie.core.dist.Sharding;
import dev.collie.core.nn.ModuleNames;
import dev.collie.core.CollieException;
import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ParallelStyle;
import dev.collie.core.nn.Attention;
import dev.collie.core.nn.RMSNorm;
import dev.collie.core.nn.Embedding;
import dev.collie.core.nn.GeluMlp;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.LayerWrapper;
import dev.collie.core.nn.Linear;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.SwiGluMlp;
import dev.collie.core.nn.TensorParallelContext;
import dev.collie.core.nn.TensorParallelizable;
import dev.collie.core.nn.TiedEmbedding;
import dev.collie.core.train.LanguageModel;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;
import java.util.regex.Pattern;

/**
 * Tensor parallelism (Megatron style) applied to a model from outside, following the model's own plan
 * ({@link LanguageModel#tensorParallelPlan()}): column-parallel q/k/v and gate/up projections, row-parallel
 * o/down projections, the embedding and output head split over the vocabulary, and a
 * {@link TensorParallelRegion} around every module that owns column-parallel layers (LLaMA: {@code self_attn}
 * and {@code mlp}). A LLaMA block then does one all-reduce of {@code [rows, hidden]} per attention and per
 * MLP in forward, and one each in backward; the embedding one in forward, the head one in backward, and the
 * loss two small ones ({@link VocabParallelLoss}). Parameter names stay Hugging Face's.
 *
 * <p><b>Threads.</b> Every rank runs forward and backward on one thread, the thread that owns the rank's
 * tensor-parallel communicator: the collectives are called from inside forward and backward, a
 * communicator is used by one thread at a time, and all ranks must issue them in the same order. So run a
 * tensor-parallel model with one worker per rank ({@code new StepRunner(model, 1)}), never with several
 * worker threads sharing the model.
 *
 * <p><b>Usage.</b> Every rank builds the same model (same seed, or the same checkpoint), then
 * {@code LanguageModel tpModel = TensorParallel.apply(model, tpComm)}; the optimizer takes
 * {@code tpModel.module().namedParameters()} (this rank's shards and the replicated parameters). To save a
 * Hugging Face checkpoint, every rank calls {@link #gatherFullWeights}; a loader slices full tensors with
 * {@link #shardOf} and the style the parameter carries ({@link Parameter#sharding()}).
 */
public final class TensorParallel {
    private TensorParallel() {
    }

    /**
     * Splits {@code model} for rank {@code tp.rank()} of {@code tp.size()}: replaces the modules its plan
     * names with their tensor-parallel counterparts holding this rank's shards, wraps the modules that own
     * column-parallel layers in a {@link TensorParallelRegion}, and returns a model whose
     * {@link LanguageModel#loss()} works on the vocabulary shards. The model object itself is changed (its
     * full weights are released with the replaced modules). With one rank the model is returned unchanged.
     * Apply it before anything holds on to the model's parameters (optimizer, data-parallel hooks): the split
     * modules have new {@link Parameter} objects (same names, default hook). A planned module that is neither a
     * {@link Linear} nor an {@link Embedding} but a {@link TensorParallelizable} (a PEFT LoRA layer wrapping the
     * planned linear) splits itself through a {@link TensorParallelContext}, registering how its parameters are
     * split; every {@link TensorParallelizable} of the resulting tree is then told the context once
     * ({@link TensorParallelizable#tensorParallelApplied}).
     *
     * @throws CollieException when the model has no plan, or a head count, the intermediate size or the
     *                         vocabulary is not divisible by the number of ranks (naming the numbers); the
     *                         model is then left unchanged
     */
    public static LanguageModel apply(LanguageModel model, Communicator tp) {
        int n = tp.size();
        if (n == 1) {
            return model;
        }
        if (model instanceof TensorParallelModel) {
            throw new CollieException("the model is already tensor parallel");
        }
        String what = model.getClass().getSimpleName().isEmpty() ? model.getClass().getName()
                : model.getClass().getSimpleName();
        Map<String, ParallelStyle> plan = model.tensorParallelPlan();
        if (plan.isEmpty()) {
            throw new CollieException(what + " declares no tensor-parallel plan, so it cannot be split over "
                    + n + " tensor-parallel ranks");
        }
        Map<String, Module> modules = model.module().namedModules();
        Map<String, ParallelStyle> matched = match(plan, modules.keySet());
        validate(what, modules, matched, n);
        checkHeadIsSplit(what, model, modules, matched);

        // replace the planned modules; each new parameter carries how it is split (Parameter.sharding)
        ApplyContext ctx = new ApplyContext(tp);
        Set<String> regions = new LinkedHashSet<>();
        for (Map.Entry<String, ParallelStyle> e : matched.entrySet()) {
            String name = e.getKey();
            ParallelStyle style = e.getValue();
            Module old = modules.get(name);
            Module replacement;
            // a fused projection's outputs (queries | keys | values, gate | up) are split section by section
            ctx.sections = style == ParallelStyle.COLUMN ? sectionsOf(modules.get(parentOf(name)), lastOf(name),
                    weightShape(old) == null ? 0 : weightShape(old)[0]) : List.of();
            if (!(old instanceof Linear) && !(old instanceof Embedding) && old instanceof TensorParallelizable t) {
                // a module that splits itself (a LoRA-wrapped linear): it registers its split parameters in ctx
                replacement = t.shardForTensorParallel(style, ctx);
                if (!(replacement instanceof Layer)) {
                    throw new CollieException(old.getClass().getSimpleName() + " split " + name + " into a "
                            + replacement.getClass().getSimpleName() + ", which is not a Layer");
                }
            } else if (sharedKeyValues(modules.get(parentOf(name)), lastOf(name), n)) {
                // more ranks than key/value heads: every rank keeps them whole (Attention reads the ones it needs)
                replacement = new ReplicatedBeforeColumnLinear((Linear) old, tp);
            } else {
                replacement = switch (style) {
                    case COLUMN, ROW -> ctx.shardLinear((Linear) old, style);
                    case VOCAB -> old instanceof Embedding emb ? new VocabParallelEmbedding(emb, tp)
                            : new VocabParallelHead((Linear) old, tp);
                    case REPLICATE -> throw new IllegalStateException("unreachable");
                };
            }
            modules.get(parentOf(name)).replaceModule(lastOf(name), replacement);
            if (style == ParallelStyle.COLUMN) {
                regions.add(parentOf(name));
            }
        }
        // per-head norms of an attention whose heads are now split see only this rank's heads
        for (String r : regions) {
            if (modules.get(r) instanceof Attention a) {
                for (String norm : Attention.PER_HEAD_NORMS) {
                    if (a.children().get(norm) instanceof RMSNorm headNorm) {
                        a.replaceModule(norm, new HeadShardNorm(headNorm, tp));
                    }
                }
            }
        }
        // one all-reduce of the input gradient per module whose column-parallel layers share an input
        for (String r : regions) {
            Module owner = modules.get(r);
            modules.get(parentOf(r)).replaceModule(lastOf(r), new TensorParallelRegion((Layer) owner, tp));
        }
        // modules that act across the model (prefix tuning's keys and values) learn the rank's share
        Set<Module> told = Collections.newSetFromMap(new IdentityHashMap<>());
        for (Module m : model.module().namedModules().values()) {
            // a wrapped layer (an attention inside its region) is told as well
            Object inner = m instanceof Layer l ? LayerWrapper.unwrap(l) : m;
            for (Object o : new Object[] {m, inner}) {
                if (o instanceof TensorParallelizable t && o instanceof Module om && told.add(om)) {
                    t.tensorParallelApplied(ctx);
                }
            }
        }
        return new TensorParallelModel(model, tp);
    }

    /**
     * A context for splitting single modules by hand ({@link TensorParallelizable#shardForTensorParallel}) outside
     * {@link #apply}, e.g. in a layer test; the parameters it splits carry their {@link Parameter#sharding()}.
     */
    public static TensorParallelContext context(Communicator tp) {
        return new ApplyContext(tp);
    }

    /** Whether {@code p} is split over tensor-parallel ranks. */
    public static boolean isSharded(Parameter p) {
        return p.sharding().style() != ParallelStyle.REPLICATE;
    }

    /** How {@code p} is split; REPLICATE when it is whole. */
    public static ParallelStyle styleOf(Parameter p) {
        return p.sharding().style();
    }

    /** Every parameter name of {@code model} with how it is split, in the model's order. */
    public static Map<String, ParallelStyle> styles(LanguageModel model) {
        Map<String, ParallelStyle> out = new LinkedHashMap<>();
        model.module().namedParameters().forEach((n, p) -> out.put(n, styleOf(p)));
        return out;
    }

    /**
     * Rank {@code rank}'s shard of a full tensor, as {@link #apply} slices it: {@link ParallelStyle#COLUMN} and
     * {@link ParallelStyle#VOCAB} take the rank's block of dimension 0, {@link ParallelStyle#ROW} its block of
     * dimension 1, {@link ParallelStyle#REPLICATE} all of it. A contiguous copy, outside any workspace.
     *
     * @throws IllegalArgumentException when the split dimension is not divisible by {@code n}
     */
    public static INDArray shardOf(INDArray full, ParallelStyle style, int rank, int n) {
        return Shards.shardOf(full, style, rank, n);
    }

    /** Rank {@code rank}'s part of a full tensor as {@code sharding} cuts it (by sections, if it has them). */
    public static INDArray shardOf(INDArray full, Sharding sharding, int rank, int n) {
        return Shards.shardOf(full, sharding.style(), rank, n, sharding.sections());
    }

    /**
     * Every parameter of {@code tpModel} in its full Hugging Face shape, by HF name, on every rank: split
     * parameters are all-gathered along their split dimension, replicated ones copied. A collective: every
     * rank of {@code tp} must call it (from its own thread). The arrays live outside any workspace.
     */
    public static Map<String, INDArray> gatherFullWeights(LanguageModel tpModel, Communicator tp) {
        return gatherFullWeights(tpModel, tp, name -> true);
    }

    /**
     * As {@link #gatherFullWeights(LanguageModel, Communicator)}, for the parameters whose names {@code which}
     * accepts (e.g. a PEFT adapter's: {@code Peft.trainableNamedParameters(m)::containsKey}); every rank must
     * pass the same selection. LoRA parameters are gathered along the dimension their layer registered
     * ({@code lora_B} of a column-parallel base by rows, {@code lora_A} of a row-parallel base by columns).
     */
    public static Map<String, INDArray> gatherFullWeights(LanguageModel tpModel, Communicator tp,
                                                          Predicate<String> which) {
        Map<String, INDArray> out = new LinkedHashMap<>();
        IdentityHashMap<Parameter, INDArray> done = new IdentityHashMap<>();
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            for (Map.Entry<String, Parameter> e : tpModel.module().namedParameters().entrySet()) {
                if (!which.test(e.getKey())) {
                    continue;
                }
                Parameter p = e.getValue();
                INDArray full = done.get(p);
                if (full == null) {
                    full = gather(p.data(), p.sharding(), tp);
                    done.put(p, full);
                }
                out.put(e.getKey(), full);
            }
        }
        return out;
    }

    private static INDArray gather(INDArray shard, Sharding sharding, Communicator tp) {
        int n = tp.size();
        int dim = Sharding.dimOf(sharding.style());
        INDArray local = Shards.contiguous(shard);
        if (dim < 0 || n == 1) {
            return local.dup('c');
        }
        long[] shape = local.shape();
        if (dim == 0) {
            long[] fullShape = shape.clone();
            fullShape[0] *= n;
            INDArray out = Nd4j.createUninitialized(local.dataType(), fullShape);
            tp.allGather(local, out);
            return sharding.sections().isEmpty() ? out : bySection(out, sharding.sections(), n);
        }
        // dimension 1: the ranks' [out, in/n] blocks side by side
        INDArray blocks = Nd4j.createUninitialized(local.dataType(), n, shape[0], shape[1]);
        tp.allGather(local, blocks);
        return blocks.permute(1, 0, 2).dup('c').reshape('c', shape[0], n * shape[1]);
    }

    /**
     * The rank-major rows {@code byRank} (each rank's block of every section, rank after rank) put back in section
     * order: section s is rank 0's block of s, then rank 1's, ...
     */
    private static INDArray bySection(INDArray byRank, List<Long> sections, int n) {
        long local = byRank.size(0) / n;
        List<INDArray> parts = new ArrayList<>();
        long offset = 0;
        for (long len : sections) {
            long per = len / n;
            for (int r = 0; r < n; r++) {
                parts.add(byRank.get(Shards.range(byRank.rank(), 0, r * local + offset, r * local + offset + per)));
            }
            offset += per;
        }
        return Shards.contiguous(Nd4j.concat(0, parts.toArray(INDArray[]::new)));      // (a vector's concat is 'f')
    }

    /**
     * Whether {@code parent}'s child {@code child} is a separate key or value projection that {@code n} ranks share
     * rather than split: fewer key/value heads than ranks, every rank's query heads reading one of them
     * ({@code n} a multiple of the key/value heads). Such a projection is kept whole on every rank.
     */
    private static boolean sharedKeyValues(Module parent, String child, int n) {
        return parent instanceof Attention a && a.projections().fusedQkv() == null
                && (child.equals("k_proj") || child.equals("v_proj"))
                && a.kvHeads() % n != 0 && n % a.kvHeads() == 0 && a.heads() % n == 0;
    }

    /**
     * The output sections of {@code parent}'s child {@code child} ({@code out} features) that a column split cuts
     * one by one: a fused projection's (Attention, SwiGluMlp); empty for any other module.
     */
    private static List<Long> sectionsOf(Module parent, String child, long out) {
        long[] s = parent instanceof Attention a ? a.sectionsOf(child, out)
                : parent instanceof SwiGluMlp m ? m.sectionsOf(child, out) : null;
        return s == null ? List.of() : Arrays.stream(s).boxed().toList();
    }

    /**
     * The context {@link #apply} hands {@link TensorParallelizable} modules: the group, the standard split of a
     * linear, and the shards of other parameters, each tagged with its {@link Parameter#sharding()}.
     */
    private static class ApplyContext implements TensorParallelContext {
        private final Communicator tp;
        /** The output sections of the module being split now (empty: one). */
        private List<Long> sections = List.of();

        ApplyContext(Communicator tp) {
            this.tp = tp;
        }

        @Override
        public Communicator communicator() {
            return tp;
        }

        @Override
        public Module shardLinear(Linear full, ParallelStyle style) {
            Module m = switch (style) {
                case COLUMN -> new ColumnParallelLinear(full, tp, sections);
                case ROW -> new RowParallelLinear(full, tp);
                default -> throw new IllegalArgumentException("a linear layer is split COLUMN or ROW, not " + style);
            };
            return m;         // its parameters are tagged by the layer (a row-parallel bias stays whole)
        }

        @Override
        public Module replicateBeforeColumn(Linear full) {
            return new ReplicatedBeforeColumnLinear(full, tp);
        }

        @Override
        public INDArray shardOf(INDArray full, ParallelStyle style) {
            return Shards.shardOf(full, style, tp.rank(), tp.size());
        }

        @Override
        public INDArray shardLike(INDArray full, Parameter shard) {
            Sharding s = shard.sharding();
            return Shards.shardOf(full, s.style(), tp.rank(), tp.size(), s.sections());
        }

        @Override
        public Parameter shardParameter(Parameter full, ParallelStyle style) {
            if (style == ParallelStyle.REPLICATE) {
                return full;
            }
            // tagged as the standard layers tag their shards: whole-tensor statistics (AdaLomo) sum over tp
            return Shards.shardParameter(full, style, tp.rank(), tp.size()).setSharding(new Sharding(style, tp));
        }

        @Override
        public INDArray allReduceSum(INDArray a) {
            return Shards.allReduceSum(tp, a);
        }
    }

    // ------------------------------------------------------------------------------------------------
    // plan matching and validation

    /**
     * The modules each plan pattern matches (the first pattern that matches a name decides; REPLICATE
     * entries are kept whole), in module order. Patterns: dotted module names, {@code *} one component,
     * {@code (a|b)} alternatives.
     */
    static Map<String, ParallelStyle> match(Map<String, ParallelStyle> plan, Iterable<String> moduleNames) {
        List<Map.Entry<Pattern, ParallelStyle>> compiled = new ArrayList<>();
        plan.forEach((p, s) -> compiled.add(Map.entry(ModuleNames.pattern(p), s)));
        Map<String, ParallelStyle> out = new LinkedHashMap<>();
        for (String name : moduleNames) {
            if (name.isEmpty()) {
                continue;
            }
            for (Map.Entry<Pattern, ParallelStyle> c : compiled) {
                if (c.getKey().matcher(name).matches()) {
                    if (c.getValue() != ParallelStyle.REPLICATE) {
                        out.put(name, c.getValue());
                    }
                    break;
                }
            }
        }
        return out;
    }

    private static void validate(String what, Map<String, Module> modules, Map<String, ParallelStyle> matched, int n) {
        if (matched.isEmpty()) {
            throw new CollieException("the tensor-parallel plan of " + what + " matches none of its modules");
        }
        // field -> value, first occurrence (every block repeats the same numbers)
        Map<String, Long> notDivisible = new LinkedHashMap<>();
        for (Map.Entry<String, ParallelStyle> e : matched.entrySet()) {
            String name = e.getKey();
            ParallelStyle style = e.getValue();
            Module m = modules.get(name);
            Module parent = modules.get(parentOf(name));
            if (style == ParallelStyle.VOCAB) {
                long rows;
                if (m instanceof Embedding emb) {
                    rows = emb.vocabSize();
                } else if (m instanceof Linear l) {
                    rows = l.outFeatures();
                } else if (m instanceof TensorParallelizable && weightShape(m) != null) {
                    rows = weightShape(m)[0];
                } else {
                    throw notSplittable(name, m, style, "an Embedding or a Linear");
                }
                check(notDivisible, "vocab_size", rows, n);
                continue;
            }
            long[] shape = m instanceof Linear l ? new long[] {l.outFeatures(), l.inFeatures()}
                    : m instanceof TensorParallelizable ? weightShape(m) : null;
            if (shape == null) {
                throw notSplittable(name, m, style, "a Linear");
            }
            boolean column = style == ParallelStyle.COLUMN;
            long features = column ? shape[0] : shape[1];
            if (parent instanceof Attention a && lastOf(name).equals(a.projections().fusedQkv())) {
                // a fused q/k/v projection keeps whole groups when it has several (contiguous blocks), and the
                // rank's block of the queries, keys and values of a single one
                check(notDivisible, "num_attention_heads", a.heads(), n);
                check(notDivisible, "num_key_value_heads", a.kvHeads(), n);
                if (a.fusedGroups() > 1 && a.fusedGroups() != a.kvHeads()) {
                    check(notDivisible, "the groups of " + lastOf(name), a.fusedGroups(), n);
                }
            } else if (parent instanceof Attention a) {
                long heads = features / a.headDim();
                boolean kv = column && heads != a.heads();
                if (kv && sharedKeyValues(a, lastOf(name), n)) {
                    if (!(m instanceof Linear)) {
                        throw new CollieException("tensor-parallel plan: " + name + " is a " + m.getClass()
                                .getSimpleName() + "; with more ranks (" + n + ") than key/value heads (" + heads
                                + ") the key/value projections are replicated, which only a plain Linear can be");
                    }
                    continue;
                }
                check(notDivisible, kv ? "num_key_value_heads" : "num_attention_heads", heads, n);
            } else if (parent instanceof SwiGluMlp mlp) {
                boolean fused = column && mlp.sectionsOf(lastOf(name), features) != null;
                check(notDivisible, "intermediate_size", fused ? features / 2 : features, n);
            } else if (parent instanceof GeluMlp) {
                check(notDivisible, "intermediate_size", features, n);
            } else {
                check(notDivisible, (column ? "out_features of " : "in_features of ") + name, features, n);
            }
            if (column) {
                String owner = parentOf(name);
                if (owner.isEmpty() || !(modules.get(owner) instanceof Layer)) {
                    throw new CollieException("column-parallel module " + name + " has no parent layer to hold its"
                            + " tensor-parallel region");
                }
            }
        }
        if (!notDivisible.isEmpty()) {
            List<String> parts = new ArrayList<>();
            notDivisible.forEach((f, v) -> parts.add(f + " = " + v));
            throw new CollieException("cannot split " + what + " over " + n + " tensor-parallel ranks: "
                    + String.join(", ", parts) + (parts.size() == 1 ? " is" : " are") + " not divisible by " + n);
        }
    }

    private static void check(Map<String, Long> notDivisible, String field, long value, int n) {
        if (value % n != 0) {
            notDivisible.putIfAbsent(field, value);
        }
    }

    private static CollieException notSplittable(String name, Module m, ParallelStyle style, String expected) {
        return new CollieException("tensor-parallel plan: " + name + " is a " + m.getClass().getSimpleName()
                + ", but a " + style + " module must be " + expected + ", or a TensorParallelizable module with a"
                + " 2-D weight");
    }

    /** The shape of a {@link TensorParallelizable} module's own 2-D {@code weight} parameter, or null. */
    private static long[] weightShape(Module m) {
        Parameter w = m.namedParameters().get("weight");
        return w != null && w.shape().length == 2 ? w.shape() : null;
    }

    /**
     * The loss of the result works on vocabulary shards of the logits, so the output head must be split
     * too: an untied head marked VOCAB, or the outputHead of a tied embedding marked VOCAB.
     */
    private static void checkHeadIsSplit(String what, LanguageModel model, Map<String, Module> modules, Map<String, ParallelStyle> matched) {
        List<Layer> layers;
        try {
            layers = model.pipelineLayers();
        } catch (CollieException e) {
            return;      // the model does not expose its layers: trust the plan
        }
        Set<Module> vocab = Collections.newSetFromMap(new IdentityHashMap<>());
        matched.forEach((name, s) -> {
            if (s == ParallelStyle.VOCAB) {
                vocab.add(modules.get(name));
            }
        });
        Layer head = LayerWrapper.unwrap(layers.get(layers.size() - 1));
        if (vocab.contains(head)) {
            return;
        }
        for (Module m : vocab) {
            if (m instanceof TiedEmbedding t && t.outputHead() == head) {
                return;
            }
        }
        throw new CollieException("the tensor-parallel plan of " + what
                + " does not split the output head over the vocabulary (VOCAB), which the tensor-parallel loss needs");
    }

    private static String parentOf(String name) {
        int i = name.lastIndexOf('.');
        return i < 0 ? "" : name.substring(0, i);
    }

    private static String lastOf(String name) {
        return name.substring(name.lastIndexOf('.') + 1);
    }
}
